/* Back-off arithmetic of SPEC §4.4, kept pure (no clock, no randomness of
 * its own) so that it can be tested exactly. */
#ifndef ICE_RETRY_H
#define ICE_RETRY_H

#include "workflow.h"

/* The delay in ms before retry n (n = 1 for the first retry): b (fixed),
 * b*n (linear) or b*2^(n-1) (exponential), capped at max_backoff_seconds.
 * With jitter the delay is uniform in [0, d], drawn from rnd. */
uint64_t ice__retry_delay_ms(const ice__retry_t *p, unsigned n, uint32_t rnd);

#endif
