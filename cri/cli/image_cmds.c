/* `quark pull/images/rmi/import`: filled in by the image store work. Until
 * then each says so and fails. */
#include <stdio.h>

#include "cli.h"

static int not_yet(const char *name)
{
  return quark_cli_fail("%s: not implemented yet", name);
}

int quark_cmd_pull(struct quark_cli *cli, int argc, char **argv) { return not_yet("pull"); }
int quark_cmd_images(struct quark_cli *cli, int argc, char **argv) { return not_yet("images"); }
int quark_cmd_rmi(struct quark_cli *cli, int argc, char **argv) { return not_yet("rmi"); }
int quark_cmd_import(struct quark_cli *cli, int argc, char **argv) { return not_yet("import"); }
