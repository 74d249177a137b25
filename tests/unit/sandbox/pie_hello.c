/* A static-PIE fixture for the ELF loader tests (never run on the host by the tests). */
#include <unistd.h>
int main(void) { return write(1, "pie\n", 4) == 4 ? 0 : 1; }
