/* AdaScale SGD (Johnson et al. 2020, "AdaScale SGD: A User-Friendly
 * Algorithm for Distributed Training", ICML): the gain ratio that scales the
 * rate of a batch S times the base one, and the scale-invariant clock on
 * which the base batch's schedule runs. */
#ifndef DDT_ADASCALE_H
#define DDT_ADASCALE_H

/* r = (sigma^2 + |G|^2) / (sigma^2 / S + |G|^2), S = batch / base, with
 * sigma^2 = tr(Sigma) / base the variance of a base-batch gradient: 1 when
 * the gradient is all signal, S when it is all noise. Without an estimate
 * (NaN) or without positive noise the gain is 1; a |G|^2 estimate at or
 * below 0 beside positive noise reads as all noise (S); the result is kept within [min(1, S), max(1, S)]
 * as the exact formula is. */
double adascale_gain(double g2, double trace, double batch, double base);

#endif
