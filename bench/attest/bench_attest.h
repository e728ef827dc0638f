/* bench_attest's sections in other files. */
#ifndef BENCH_ATTEST_H
#define BENCH_ATTEST_H

/*
 * The SEV-SNP section (bench_attest_snp.c): verifications/s of a real report, chain cached and
 * not, and through the engine, beside the openssl figures measured in the same run. `vectors` is
 * the tests/vectors directory. 0 on success.
 */
int bench_attest_snp(const char *vectors, unsigned seconds, double ossl_cpu, double ossl_wall);

#endif
