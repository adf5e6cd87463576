/* Back-off delays. The scheduler arms a timer with the result; nothing
 * here sleeps or reads the time. */
#include "retry.h"

#include <math.h>

uint64_t ice__retry_delay_ms(const ice__retry_t *p, unsigned n, uint32_t rnd) {
  double d = p->backoff_seconds;

  if (n < 1)
    n = 1;
  switch (p->strategy) {
  case ICE__BACKOFF_FIXED:
    break;
  case ICE__BACKOFF_LINEAR:
    d *= (double)n;
    break;
  default:
    /* 2^(n-1) overflows nothing: the cap applies long before. */
    d *= ldexp(1.0, n > 60 ? 60 : (int)n - 1);
    break;
  }
  if (d > p->max_backoff_seconds)
    d = p->max_backoff_seconds;
  uint64_t ms = (uint64_t)llround(d * 1000.0);
  if (p->jitter)
    ms = ms == 0 ? 0 : (uint64_t)rnd % (ms + 1);
  return ms;
}
