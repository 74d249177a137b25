/* The channel state machine: socket semantics as the actions it asks for. */
#include <criterion/criterion.h>

#include "channel/chan.h"
#include "quark/tsor.h"

static struct tsor_chan_sm open_chan(void)
{
  struct tsor_chan_sm s = {0};
  tsor_chan_step(&s, TSOR_EV_CONNECT);
  cr_assert_eq(s.st, TSOR_CS_CONNECTING);
  uint32_t a = tsor_chan_step(&s, TSOR_EV_ACCEPTED);
  cr_assert_eq(a, 0);
  cr_assert_eq(s.st, TSOR_CS_OPEN);
  return s;
}

Test(chan, refused_frees_the_id_at_once)
{
  struct tsor_chan_sm s = {0};
  tsor_chan_step(&s, TSOR_EV_CONNECT);
  uint32_t a = tsor_chan_step(&s, TSOR_EV_REFUSED);
  cr_assert_eq(a, TSOR_ACT_FREE_CHAN);
  cr_assert_eq(s.st, TSOR_CS_IDLE, "the socket may connect again");
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_CLOSE), TSOR_ACT_RELEASE);
}

Test(chan, shutdown_waits_for_queued_bytes)
{
  struct tsor_chan_sm s = open_chan();
  s.drained = false; /* the client wrote bytes not yet handed to the fabric */
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_SHUTDOWN), 0);
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_TX_DRAINED), TSOR_ACT_SEND_FIN, "FIN follows the data");
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_TX_DRAINED), 0, "one FIN only");
}

Test(chan, half_close_keeps_reading)
{
  struct tsor_chan_sm s = open_chan();
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_SHUTDOWN), TSOR_ACT_SEND_FIN);
  cr_assert_eq(s.st, TSOR_CS_OPEN);
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_FIN), TSOR_ACT_PUBLISH);
  cr_assert_eq(tsor_chan_dstate(&s), TSOR_ST_RX_EOF);
  /* both FINs crossed; close is now graceful */
  uint32_t a = tsor_chan_step(&s, TSOR_EV_CLOSE);
  cr_assert_eq(a, TSOR_ACT_SEND_CLOSE);
  a = tsor_chan_step(&s, TSOR_EV_PEER_CLOSE);
  cr_assert_eq(a, TSOR_ACT_PUBLISH | TSOR_ACT_FREE_CHAN | TSOR_ACT_RELEASE);
  cr_assert_eq(s.st, TSOR_CS_DONE);
}

Test(chan, close_sends_fin_then_close)
{
  struct tsor_chan_sm s = open_chan();
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_CLOSE), TSOR_ACT_SEND_FIN | TSOR_ACT_SEND_CLOSE);
  cr_assert(s.chan, "the id stays until the peer's terminal arrives");
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_PEER_CLOSE), TSOR_ACT_PUBLISH | TSOR_ACT_FREE_CHAN | TSOR_ACT_RELEASE);
}

Test(chan, close_with_unread_bytes_resets)
{
  struct tsor_chan_sm s = open_chan();
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_CLOSE_UNREAD), TSOR_ACT_SEND_RESET);
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_PEER_CLOSE), TSOR_ACT_PUBLISH | TSOR_ACT_FREE_CHAN | TSOR_ACT_RELEASE);
}

Test(chan, peer_reset_answers_and_frees)
{
  struct tsor_chan_sm s = open_chan();
  uint32_t a = tsor_chan_step(&s, TSOR_EV_PEER_RESET);
  cr_assert_eq(a, TSOR_ACT_PUBLISH | TSOR_ACT_SEND_CLOSE | TSOR_ACT_FREE_CHAN);
  cr_assert_eq(tsor_chan_dstate(&s) & TSOR_ST_RESET, TSOR_ST_RESET);
  cr_assert(!(a & TSOR_ACT_RELEASE), "the client still holds the socket");
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_CLOSE), TSOR_ACT_RELEASE);
}

Test(chan, peer_close_means_eof_and_epipe)
{
  struct tsor_chan_sm s = open_chan();
  tsor_chan_step(&s, TSOR_EV_FIN);
  uint32_t a = tsor_chan_step(&s, TSOR_EV_PEER_CLOSE);
  cr_assert(a & TSOR_ACT_SEND_CLOSE);
  cr_assert_eq(tsor_chan_dstate(&s), TSOR_ST_RX_EOF | TSOR_ST_PEER_GONE);
}

Test(chan, client_death_resets)
{
  struct tsor_chan_sm s = open_chan();
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_ABORT), TSOR_ACT_SEND_RESET);
  cr_assert(s.chan, "the ring stays reserved until the peer answers");
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_PEER_CLOSE), TSOR_ACT_PUBLISH | TSOR_ACT_FREE_CHAN | TSOR_ACT_RELEASE);
}

Test(chan, connection_loss_resets_everything)
{
  struct tsor_chan_sm s = open_chan();
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_CONN_DOWN), TSOR_ACT_PUBLISH | TSOR_ACT_FREE_CHAN);
  cr_assert(tsor_chan_dstate(&s) & TSOR_ST_RESET);
  struct tsor_chan_sm c = {0};
  tsor_chan_step(&c, TSOR_EV_CONNECT);
  cr_assert(tsor_chan_step(&c, TSOR_EV_CONN_DOWN) & TSOR_ACT_FREE_CHAN);
}

Test(chan, close_while_connecting)
{
  struct tsor_chan_sm s = {0};
  tsor_chan_step(&s, TSOR_EV_CONNECT);
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_CLOSE), 0, "wait for the answer");
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_ACCEPTED), TSOR_ACT_SEND_RESET, "tear down what the peer made");
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_PEER_CLOSE), TSOR_ACT_PUBLISH | TSOR_ACT_FREE_CHAN | TSOR_ACT_RELEASE);
}

Test(chan, passive_side_and_listen)
{
  struct tsor_chan_sm s = {0};
  tsor_chan_step(&s, TSOR_EV_INCOMING);
  cr_assert_eq(s.st, TSOR_CS_OPEN);
  struct tsor_chan_sm l = {0};
  tsor_chan_step(&l, TSOR_EV_LISTEN);
  cr_assert_eq(l.st, TSOR_CS_LISTEN);
  cr_assert_eq(tsor_chan_step(&l, TSOR_EV_CONNECT), 0, "a listening socket cannot connect");
  cr_assert_eq(tsor_chan_step(&l, TSOR_EV_CLOSE), TSOR_ACT_RELEASE);
}

Test(chan, stray_events_change_nothing)
{
  struct tsor_chan_sm s = {0};
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_FIN), 0);
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_PEER_RESET), 0);
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_ACCEPTED), 0);
  cr_assert_eq(s.st, TSOR_CS_IDLE);
}

Test(chan, client_death_while_connecting)
{
  struct tsor_chan_sm s = {0};
  tsor_chan_step(&s, TSOR_EV_CONNECT);
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_ABORT), 0, "the peer's channel is not known yet");
  cr_assert_eq(tsor_chan_step(&s, TSOR_EV_ACCEPTED), TSOR_ACT_SEND_RESET);
  struct tsor_chan_sm r = {0};
  tsor_chan_step(&r, TSOR_EV_CONNECT);
  tsor_chan_step(&r, TSOR_EV_ABORT);
  cr_assert_eq(tsor_chan_step(&r, TSOR_EV_REFUSED), TSOR_ACT_FREE_CHAN | TSOR_ACT_RELEASE);
}
