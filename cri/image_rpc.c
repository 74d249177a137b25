/* ImageService handlers. The image store (cri/image/) fills these in; until
 * then each answers UNIMPLEMENTED naming the RPC, as the README's support
 * table says. */
#include "server.h"

static grpc_status_code image_unimplemented(struct cri_call *call, const ProtobufCMessage *req,
                                            ProtobufCMessage **resp)
{
  return cri_call_error(call, GRPC_STATUS_UNIMPLEMENTED, "%s is not implemented by quark yet",
                        cri_call_method(call));
}

int cri_image_init(struct cri_server *srv, const struct cri_config *cfg, q_error **err)
{
  static const char *const methods[] = {"PullImage", "ImageStatus", "ListImages", "RemoveImage",
                                        "ImageFsInfo"};
  for (size_t i = 0; i < Q_ARRAY_SIZE(methods); i++) {
    int r = cri_server_set_handler(srv, "ImageService", methods[i], image_unimplemented);
    if (r < 0)
      return q_error_make(err, -r, "register ImageService/%s", methods[i]);
  }
  return 0;
}

void cri_image_fini(struct cri_server *srv) {}
