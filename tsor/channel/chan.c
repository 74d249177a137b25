/* Channel state machine (see chan.h). */
#include "channel/chan.h"

#include "quark/tsor.h"

static uint32_t finish(struct tsor_chan_sm *s, uint32_t act)
{
  if (s->chan && s->term_sent && s->term_recv) {
    s->chan = false;
    s->st = TSOR_CS_DONE;
    act |= TSOR_ACT_FREE_CHAN;
  }
  if (s->released && !s->chan) act |= TSOR_ACT_RELEASE;
  return act;
}

/* Graceful progress on an open channel: FIN once everything is out, CLOSE
 * once the client let go and the FIN is out. */
static uint32_t progress(struct tsor_chan_sm *s)
{
  uint32_t act = 0;
  if (s->st != TSOR_CS_OPEN || s->term_sent) return finish(s, act);
  if (s->shut_wr && s->drained && !s->fin_sent) {
    s->fin_sent = true;
    act |= TSOR_ACT_SEND_FIN;
  }
  if (s->released && s->fin_sent) {
    s->term_sent = true;
    act |= TSOR_ACT_SEND_CLOSE;
  }
  return finish(s, act);
}

uint32_t tsor_chan_step(struct tsor_chan_sm *s, enum tsor_cev ev)
{
  switch (ev) {
  case TSOR_EV_CONNECT:
    if (s->st != TSOR_CS_IDLE) return 0;
    s->st = TSOR_CS_CONNECTING;
    s->chan = true;
    s->drained = true;
    return 0;
  case TSOR_EV_LISTEN:
    if (s->st != TSOR_CS_IDLE) return 0;
    s->st = TSOR_CS_LISTEN;
    return 0;
  case TSOR_EV_INCOMING:
    if (s->st != TSOR_CS_IDLE) return 0;
    s->st = TSOR_CS_OPEN;
    s->chan = true;
    s->drained = true;
    return 0;
  case TSOR_EV_ACCEPTED:
    if (s->st != TSOR_CS_CONNECTING) return 0;
    s->st = TSOR_CS_OPEN;
    if (s->released) {
      /* closed while connecting: the peer made a channel; tear it down */
      s->term_sent = true;
      return TSOR_ACT_SEND_RESET | finish(s, 0);
    }
    return progress(s);
  case TSOR_EV_REFUSED:
    if (s->st != TSOR_CS_CONNECTING) return 0;
    /* the peer made nothing: the id is free at once */
    s->chan = false;
    s->st = TSOR_CS_IDLE;
    return finish(s, TSOR_ACT_FREE_CHAN);
  case TSOR_EV_SHUTDOWN:
    if (s->shut_wr) return 0;
    s->shut_wr = true;
    return progress(s);
  case TSOR_EV_TX_DRAINED:
    s->drained = true;
    return progress(s);
  case TSOR_EV_FIN:
    if (s->st != TSOR_CS_OPEN || s->rx_eof) return 0;
    s->rx_eof = true;
    return TSOR_ACT_PUBLISH;
  case TSOR_EV_CLOSE:
  case TSOR_EV_CLOSE_UNREAD:
    if (s->released) return 0;
    s->released = true;
    s->shut_wr = true;
    if (s->st == TSOR_CS_OPEN && !s->term_sent && ev == TSOR_EV_CLOSE_UNREAD) {
      s->term_sent = true;
      return TSOR_ACT_SEND_RESET | finish(s, 0);
    }
    if (s->st == TSOR_CS_CONNECTING) return 0; /* wait for the answer */
    return progress(s);
  case TSOR_EV_PEER_CLOSE:
  case TSOR_EV_PEER_RESET: {
    if (!s->chan || s->term_recv) return 0;
    uint32_t act = TSOR_ACT_PUBLISH;
    s->term_recv = true;
    if (ev == TSOR_EV_PEER_RESET) {
      s->reset = true;
    } else {
      s->rx_eof = true;
      s->peer_gone = true;
    }
    if (!s->term_sent) {
      /* nothing we still hold can be delivered: answer at once */
      s->term_sent = true;
      act |= TSOR_ACT_SEND_CLOSE;
    }
    return finish(s, act);
  }
  case TSOR_EV_ABORT: {
    uint32_t act = 0;
    s->released = true;
    s->shut_wr = true;
    /* While connecting the peer's channel is not known yet: the answer
     * (ACCEPTED, with released set) sends the reset. */
    if (s->chan && !s->term_sent && s->st == TSOR_CS_OPEN) {
      s->term_sent = true;
      act |= TSOR_ACT_SEND_RESET;
    }
    return finish(s, act);
  }
  case TSOR_EV_CONN_DOWN:
    if (!s->chan) return 0;
    s->term_sent = s->term_recv = true;
    s->reset = true;
    if (s->st == TSOR_CS_CONNECTING) s->st = TSOR_CS_OPEN; /* finish() moves it to DONE */
    return finish(s, TSOR_ACT_PUBLISH);
  }
  return 0;
}

uint32_t tsor_chan_dstate(const struct tsor_chan_sm *s)
{
  uint32_t v = 0;
  if (s->rx_eof) v |= TSOR_ST_RX_EOF;
  if (s->reset) v |= TSOR_ST_RESET;
  if (s->peer_gone) v |= TSOR_ST_PEER_GONE;
  return v;
}

const char *tsor_cs_name(uint8_t st)
{
  static const char *names[] = {"idle", "listen", "connecting", "open", "done"};
  return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}
