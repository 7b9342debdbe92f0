/* Hot loops are compiled twice, for AVX2 and for the baseline ISA, and the
 * CPU picks at load time: portable binaries that still use wide vectors.
 * Floating-point contraction stays off (C11 mode), so both versions compute
 * elementwise results bit for bit alike. */
#ifndef DDT_SIMD_H
#define DDT_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DDT_HOT __attribute__((target_clones("avx2", "default")))
#else
#define DDT_HOT
#endif

#endif
