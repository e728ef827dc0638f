/*
 * Azure confidential VMs ("azure-vtpm", docs/evidence-azure.md): the HCL report with its SEV-SNP
 * report (or, on TDX CVMs, its TDREPORT and the TD quote made of it), the binding of its variable
 * data (which carries the vTPM attestation key HCLAkPub) to the hardware report data, and the
 * vTPM quote signed by that key. Parse, verify, claims, and the kind's evidence_ops.
 *
 * Trust: everything in the evidence and the endorsements is untrusted. The only anchors are the
 * AMD ARKs compiled into amd_roots.c (the caller's roots select products among them, as for the
 * sevsnp kind). The AMD ASKs below are compiled in only as untrusted intermediates, because Azure
 * clients send the VCEK alone: each is accepted only when it chains to a pinned ARK.
 *
 * Order of checks (the first failure is reported):
 *   1. the hardware report: the sevsnp kind's verifier (VCEK -> ASK -> ARK at the caller's time,
 *      TCB, chip id, ECDSA P-384 signature, guest policy and options), and VMPL 0 whatever the
 *      options say (only the paravisor runs there; a guest-made report vouches for nothing);
 *   2. the binding: REPORT_DATA == SHA-256(variable data) || 32 zero bytes;
 *   1-2 (TDX instead): the TD quote by dcap_verify (Intel SGX Root CA compiled in, the caller's
 *      collateral, time and TCB policy), then evidence_azure_tdx_bind: the TDREPORT's digests,
 *      every TDREPORT field equal to the quote body's, and the quote's REPORTDATA ==
 *      SHA-256(variable data) || 32 zero bytes. The TDREPORT's MAC cannot be checked here and is
 *      not relied on: without a verified quote a TDX HCL report is never accepted;
 *   3. HCLAkPub: the one "keys" entry of the variable data with kid "HCLAkPub", an RSA public JWK;
 *   4. the quote: the tpm kind's verifier with HCLAkPub as the enrolled key (RSASSA-PKCS1-v1_5
 *      SHA-256 over the TPMS_ATTEST bytes as given, or the scheme of an RSA TPMT_SIGNATURE; every
 *      quoted PCR supplied; SHA-1 banks refused; pcrDigest recomputed);
 *   5. (framework) debug: the SNP POLICY.DEBUG bit (TDX: the quote's TD_ATTRIBUTES.DEBUG); the
 *      nonce: input->report_data against the vTPM quote's extraData, and input->runtime_data
 *      against its first 32 bytes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "evidence/azure_int.h"

/* ---- the AMD ASKs (untrusted intermediates) ------------------------------------------------- */

/* From google/go-sev-guest verify/trust/ask_ark_{milan,genoa,turin_vcek}.pem (Apache-2.0), the
 * first certificate of each (tests/vectors/sev-snp/go-sev-guest). SHA-256 of the DER:
 * Milan 67d303bd..ac1b, Genoa 5464738c..8521, Turin 5b77ef5f..3185. */
static const char ask_milan_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIGiTCCBDigAwIBAgIDAQABMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAIC\n"
    "BQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBMHsxFDAS\n"
    "BgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEg\n"
    "Q2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZp\n"
    "Y2VzMRIwEAYDVQQDDAlBUkstTWlsYW4wHhcNMjAxMDIyMTgyNDIwWhcNNDUxMDIy\n"
    "MTgyNDIwWjB7MRQwEgYDVQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDAS\n"
    "BgNVBAcMC1NhbnRhIENsYXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5j\n"
    "ZWQgTWljcm8gRGV2aWNlczESMBAGA1UEAwwJU0VWLU1pbGFuMIICIjANBgkqhkiG\n"
    "9w0BAQEFAAOCAg8AMIICCgKCAgEAnU2drrNTfbhNQIllf+W2y+ROCbSzId1aKZft\n"
    "2T9zjZQOzjGccl17i1mIKWl7NTcB0VYXt3JxZSzOZjsjLNVAEN2MGj9TiedL+Qew\n"
    "KZX0JmQEuYjm+WKksLtxgdLp9E7EZNwNDqV1r0qRP5tB8OWkyQbIdLeu4aCz7j/S\n"
    "l1FkBytev9sbFGzt7cwnjzi9m7noqsk+uRVBp3+In35QPdcj8YflEmnHBNvuUDJh\n"
    "LCJMW8KOjP6++Phbs3iCitJcANEtW4qTNFoKW3CHlbcSCjTM8KsNbUx3A8ek5EVL\n"
    "jZWH1pt9E3TfpR6XyfQKnY6kl5aEIPwdW3eFYaqCFPrIo9pQT6WuDSP4JCYJbZne\n"
    "KKIbZjzXkJt3NQG32EukYImBb9SCkm9+fS5LZFg9ojzubMX3+NkBoSXI7OPvnHMx\n"
    "jup9mw5se6QUV7GqpCA2TNypolmuQ+cAaxV7JqHE8dl9pWf+Y3arb+9iiFCwFt4l\n"
    "AlJw5D0CTRTC1Y5YWFDBCrA/vGnmTnqG8C+jjUAS7cjjR8q4OPhyDmJRPnaC/ZG5\n"
    "uP0K0z6GoO/3uen9wqshCuHegLTpOeHEJRKrQFr4PVIwVOB0+ebO5FgoyOw43nyF\n"
    "D5UKBDxEB4BKo/0uAiKHLRvvgLbORbU8KARIs1EoqEjmF8UtrmQWV2hUjwzqwvHF\n"
    "ei8rPxMCAwEAAaOBozCBoDAdBgNVHQ4EFgQUO8ZuGCrD/T1iZEib47dHLLT8v/gw\n"
    "HwYDVR0jBBgwFoAUhawa0UP3yKxV1MUdQUir1XhK1FMwEgYDVR0TAQH/BAgwBgEB\n"
    "/wIBADAOBgNVHQ8BAf8EBAMCAQQwOgYDVR0fBDMwMTAvoC2gK4YpaHR0cHM6Ly9r\n"
    "ZHNpbnRmLmFtZC5jb20vdmNlay92MS9NaWxhbi9jcmwwRgYJKoZIhvcNAQEKMDmg\n"
    "DzANBglghkgBZQMEAgIFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgIFAKID\n"
    "AgEwowMCAQEDggIBAIgeUQScAf3lDYqgWU1VtlDbmIN8S2dC5kmQzsZ/HtAjQnLE\n"
    "PI1jh3gJbLxL6gf3K8jxctzOWnkYcbdfMOOr28KT35IaAR20rekKRFptTHhe+DFr\n"
    "3AFzZLDD7cWK29/GpPitPJDKCvI7A4Ug06rk7J0zBe1fz/qe4i2/F12rvfwCGYhc\n"
    "RxPy7QF3q8fR6GCJdB1UQ5SlwCjFxD4uezURztIlIAjMkt7DFvKRh+2zK+5plVGG\n"
    "FsjDJtMz2ud9y0pvOE4j3dH5IW9jGxaSGStqNrabnnpF236ETr1/a43b8FFKL5QN\n"
    "mt8Vr9xnXRpznqCRvqjr+kVrb6dlfuTlliXeQTMlBoRWFJORL8AcBJxGZ4K2mXft\n"
    "l1jU5TLeh5KXL9NW7a/qAOIUs2FiOhqrtzAhJRg9Ij8QkQ9Pk+cKGzw6El3T3kFr\n"
    "Eg6zkxmvMuabZOsdKfRkWfhH2ZKcTlDfmH1H0zq0Q2bG3uvaVdiCtFY1LlWyB38J\n"
    "S2fNsR/Py6t5brEJCFNvzaDky6KeC4ion/cVgUai7zzS3bGQWzKDKU35SqNU2WkP\n"
    "I8xCZ00WtIiKKFnXWUQxvlKmmgZBIYPe01zD0N8atFxmWiSnfJl690B9rJpNR/fI\n"
    "ajxCW3Seiws6r1Zm+tCuVbMiNtpS9ThjNX4uve5thyfE2DgoxRFvY1CsoF5M\n"
    "-----END CERTIFICATE-----\n";

static const char ask_genoa_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIGiTCCBDigAwIBAgIDAgACMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAIC\n"
    "BQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBMHsxFDAS\n"
    "BgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEg\n"
    "Q2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZp\n"
    "Y2VzMRIwEAYDVQQDDAlBUkstR2Vub2EwHhcNMjIxMDMxMTMzMzQ4WhcNNDcxMDMx\n"
    "MTMzMzQ4WjB7MRQwEgYDVQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDAS\n"
    "BgNVBAcMC1NhbnRhIENsYXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5j\n"
    "ZWQgTWljcm8gRGV2aWNlczESMBAGA1UEAwwJU0VWLUdlbm9hMIICIjANBgkqhkiG\n"
    "9w0BAQEFAAOCAg8AMIICCgKCAgEAoHJhvk4Fwwkwb03AMfLySXJSXmEaCZMTRbLg\n"
    "Paj4oEzaD9tGfxCSw/nsCAiXHQaWUt++bnbjJO05TKT5d+Cdrz4/fiRBpbhf0xzv\n"
    "h11O+wJTBPj3uCzDm48vEZ8l5SXMO4wd/QqwsrejFERPD/Hdfv1mGCMW7ac0ug8t\n"
    "rDzqGe+l+p8NMjp/EqBDY2vd8hLaVLmS+XjAqlYVNRksh9aTzSYL19/cTrBDmqQ2\n"
    "y8k23zNl2lW6q/BtQOpWGVs3EWvBHb/Qnf3f3S9+lC4H2jdDy9yn7kqyTWq4WCBn\n"
    "E4qhYJRokulYtzMZM1Ilk4Z6RPkOTR1MJ4gdFtj7lKmrkSuOoJYmqhJIsQJ854lA\n"
    "bJybgU7zyzWAwu3uaslkYKUEAQf2ja5Hyl3IBqOzpqY31SpKzbl8NXveZybRMklw\n"
    "fe4iDLI25T9ku9CVetDYifCbdGeuHdTwZBBemW4NE57L7iEV8+zz8nxng8OMX//4\n"
    "pXntWqmQbEAnBLv2ToTgd1H2zYRthyDLc3V119/+FnTW17LK6bKzTCgEnCHQEcAt\n"
    "0hDQLLF799+2lZTxxfBEoduAZax6IjgAMCi6e1ZfKPJSkdvb2m3BwfP8bniG7+AE\n"
    "Jv1WOEmnBJc1pVQCttbJUodbi07Vfen5JRUqAvSM3ObWQOzSAGzsGnpIigwFpW6m\n"
    "9F7uYVUCAwEAAaOBozCBoDAdBgNVHQ4EFgQUssZ7pDW7HJVkHAmgQf/F3EmGFVow\n"
    "HwYDVR0jBBgwFoAUn135/g3Y81rQMxol74EpT74xqFswEgYDVR0TAQH/BAgwBgEB\n"
    "/wIBADAOBgNVHQ8BAf8EBAMCAQQwOgYDVR0fBDMwMTAvoC2gK4YpaHR0cHM6Ly9r\n"
    "ZHNpbnRmLmFtZC5jb20vdmNlay92MS9HZW5vYS9jcmwwRgYJKoZIhvcNAQEKMDmg\n"
    "DzANBglghkgBZQMEAgIFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgIFAKID\n"
    "AgEwowMCAQEDggIBAIgu3V2tQJOo0/6GvNmwLXbLDrsLKXqHUqdGyOZUpPHM3ujT\n"
    "aex1G+8bEgBswwBa+wNvl1SQqRqy2x2QwP+i//BcWr3lMrUxci4G7/P8hZBV821n\n"
    "rAUZtbvfqla5MrRH9AKJXWW/pmtd10czqCHkzdLQNZNjt2dnZHMQAMtGs1AtynRE\n"
    "HNwEBiH2KAt7gUc/sKWnSCipztKE76puN/XXbSx+Ws+VPiFw6CBAeI9dqnEiQ1tp\n"
    "EgqtWEtcKm7Ggb1XH6oWbISoowvc00/ADWfNom0xl6v2C6RIWYgUoZ2f7PCyV3Dt\n"
    "bu/fQfyyZvmtVLA4gB2Ehc6Omjy21Y55WY9IweHlKENMPEUVtRqOvRVI0ml9Wbal\n"
    "f049joCu2j33XPqwp3IrzevmPBDGpR2Stdm3K66a/g/BSY7Wc9/VeykP3RXlxY1T\n"
    "MMJ8F1lpg6Tmu+c+vow7cliyqOoayAnR71U8+rWrL3HRHheSVX8GPYOaDNBTt831\n"
    "Z027vDWv3811vMoxYxhuTRaokvNWCSzmJ2EWrPYHcHOtkjSFKN7ot0Rc70fIRZEY\n"
    "c2rb3ywLSicEq3JQCnnz6iCZ1tMfplzcrJ2LnW2F1C8yRV+okylyORlsaxOLKYOW\n"
    "jaDTSFaq1NIwodHp7X9fOG48uRuJWS8GmifD969sC4Ut2FJFoklceBVUNCHR\n"
    "-----END CERTIFICATE-----\n";

static const char ask_turin_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIGiTCCBDigAwIBAgIDAwABMEYGCSqGSIb3DQEBCjA5oA8wDQYJYIZIAWUDBAIC\n"
    "BQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAICBQCiAwIBMKMDAgEBMHsxFDAS\n"
    "BgNVBAsMC0VuZ2luZWVyaW5nMQswCQYDVQQGEwJVUzEUMBIGA1UEBwwLU2FudGEg\n"
    "Q2xhcmExCzAJBgNVBAgMAkNBMR8wHQYDVQQKDBZBZHZhbmNlZCBNaWNybyBEZXZp\n"
    "Y2VzMRIwEAYDVQQDDAlBUkstVHVyaW4wHhcNMjMwNTE1MjAyNTIxWhcNNDgwNTE1\n"
    "MjAyNTIxWjB7MRQwEgYDVQQLDAtFbmdpbmVlcmluZzELMAkGA1UEBhMCVVMxFDAS\n"
    "BgNVBAcMC1NhbnRhIENsYXJhMQswCQYDVQQIDAJDQTEfMB0GA1UECgwWQWR2YW5j\n"
    "ZWQgTWljcm8gRGV2aWNlczESMBAGA1UEAwwJU0VWLVR1cmluMIICIjANBgkqhkiG\n"
    "9w0BAQEFAAOCAg8AMIICCgKCAgEAnvg5Grv2Emd9lAhKdO64RXU3UESb6JTm0Hhz\n"
    "evx1PyxinxYqJL329qTJM0XmdozLYb7rsHxgM5I2pU18M8gect2pN/YB2LQ1/bIq\n"
    "37TPDbg7ym0MN6KkZ6aERxAX0voYtdDyNxjDAUjpRpCe1FccAev/Es2n/Fz1G1Tm\n"
    "C2XepTQqaKpmt6mnDWSCHCVsQoY0gSibeaG6doM6OiNUCbKXaC7KHH5b/96BD1DJ\n"
    "84M+JHqPClFhHqUJwzKF5Qxj4wgWAZzK8UPhiNGjrF6+TBdlFGdSzEqw1jOrCTHd\n"
    "uYyLK+5OQ3OIw4S+vZeOVoxJajTIWdsqYP2DLc0HkL0qWOumEOrrc2/4DeETShB0\n"
    "MyIpH05kSalyQN2eN5P6ptOB84hddCdbJPEepnD+FqQap1ukw3K8uBcgeBSAF23r\n"
    "6UtT8Uc5h7MsWX3MoZiEHcSkDQQ8IedTk7CLjsK6S7b/lfKqfYiRhKgGkRvsEd/M\n"
    "DNcumHZKIgzasJwgagzSggiUo9jXp3EWm84fqyxNXzSutPB7qD5P/ULAB+q9Qgvr\n"
    "zC8XneaLP0MNrHhM80UejmsBTIktMvFoWVIelYDLdcoi0eMD5DRccfsgrYaY6h/+\n"
    "/qf9tgg+mX09UJpuSPRF38oyqnNNFMl5v/tWLgUsChPU6NCQC17Qaqr8mu2ynyyu\n"
    "HEs5JVUCAwEAAaOBozCBoDAdBgNVHQ4EFgQUbYJXt6v2sMgUALjxD0WvG9aq628w\n"
    "HwYDVR0jBBgwFoAUZKBfceMMCmTYO3XlAVmeK+4GA0QwEgYDVR0TAQH/BAgwBgEB\n"
    "/wIBADAOBgNVHQ8BAf8EBAMCAQQwOgYDVR0fBDMwMTAvoC2gK4YpaHR0cHM6Ly9r\n"
    "ZHNpbnRmLmFtZC5jb20vdmNlay92MS9UdXJpbi9jcmwwRgYJKoZIhvcNAQEKMDmg\n"
    "DzANBglghkgBZQMEAgIFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgIFAKID\n"
    "AgEwowMCAQEDggIBAAXWJ3DPahralt5kXLPMm9oKlFRqeU3HcS7kA+VBlBA1lQRU\n"
    "hXkbXnTvW1GZcgdZvNCB/VlET61KbCzoFIhPIESVjjb/xWX2kg3X0HHmh1EtCDbH\n"
    "aUFM5rq6l+S1h7qOauRZebvrwApDzAANvW0LTHRumfGm/kqh9NDtVCIWPUZ1VQIg\n"
    "Gx1T3dwmgOK8ncT1J3W5xIyS0Xu3KC6w7oBlq8G2pPgTcCBJ4JBCTXCEXiAAGaTR\n"
    "/TJIaSzoZFLhxYhCMjP8WQGToPGDK2i/lZhkcGHnJOQ+lgrXfpLGqBtLlS3QODyV\n"
    "P0MomczG4dqw3THP3Y8Aq9c2KE7SylAKsS/bBKCqkj4OrABkDSkMQEz3BBoFD63a\n"
    "D5ZG/Qiz+tmhnptyPVcweC9uJlSWYm25KiV4lT52uBjxatDZKQcrpdgcU8+ozzKU\n"
    "8ICnZPOwfWeyuNMq/juyd/rzg5IePyyvt+13aJ5MlZBXZxJKoxCYIMKUwZigf0Xs\n"
    "BteT8gw10/xk5smIFIB2ERtTQPMuTENgrPTUjOeiqmBg663c2dLVol+MDiT4ltqf\n"
    "Em4Kl/cc4f+H6bEwhj1QKAN2ipRf+mP0NfzJb+6ZHNsOvyq/WByYpLXV9JJoiDW/\n"
    "8RZwPU/Mn7IuQBauCy78G7FS0ta3q1et74faYBBgeJ6awEasa25CvmsmlU0R\n"
    "-----END CERTIFICATE-----\n";

static const char *const builtin_asks[] = {ask_milan_pem, ask_genoa_pem, ask_turin_pem};

/* ---- the HCL report ------------------------------------------------------------------------- */

/* ---- the TDREPORT ---------------------------------------------------------------------------- */

static bool
take_copy(struct clst_cursor *c, size_t n, uint8_t *dst)
{
    const uint8_t *p = NULL;
    if (!clst_cursor_take(c, n, &p)) {
        return false;
    }
    memcpy(dst, p, n);
    return true;
}

enum clst_status
evidence_azure_tdreport_parse(const uint8_t *data, size_t size, struct azure_tdreport *out,
                              struct clst_err *err)
{
    struct azure_tdreport t;
    struct clst_cursor c;
    const uint8_t *rt = NULL;

    if (data == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "TDREPORT: no input or no output given");
    }
    if (size != AZURE_TDREPORT_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED, "TDREPORT: %zu bytes, not %u", size,
                            AZURE_TDREPORT_SIZE);
    }
    memset(&t, 0, sizeof(t));
    c = clst_cursor_make(data, size);
    /* REPORTMACSTRUCT (256 bytes) */
    if (!clst_cursor_take(&c, 4, &rt)) {
        return clst_err_set(err, CLST_E_INTERNAL, "TDREPORT: type");
    }
    if (rt[0] != AZURE_TDREPORT_TYPE_TDX) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "TDREPORT offset 0x000: report type 0x%02x is not TDX (0x81)",
                            (unsigned)rt[0]);
    }
    t.subtype = rt[1];
    t.version = rt[2];
    if (t.subtype != 0 || t.version > AZURE_TDREPORT_MAX_VER) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "TDREPORT offset 0x001: subtype %u / version %u is unknown (subtype 0, "
                            "version 0 or 1 are supported)",
                            (unsigned)t.subtype, (unsigned)t.version);
    }
    if (rt[3] != 0 || !clst_cursor_zeros(&c, 12)) {
        return clst_err_set(
            err, CLST_E_MALFORMED,
            "TDREPORT offset 0x003: reserved bytes of REPORTMACSTRUCT are not zero");
    }
    if (!take_copy(&c, sizeof(t.cpusvn), t.cpusvn) ||
        !take_copy(&c, sizeof(t.tee_tcb_info_hash), t.tee_tcb_info_hash) ||
        !take_copy(&c, sizeof(t.tee_info_hash), t.tee_info_hash) ||
        !take_copy(&c, sizeof(t.report_data), t.report_data)) {
        return clst_err_set(err, CLST_E_INTERNAL, "TDREPORT: REPORTMACSTRUCT");
    }
    if (!clst_cursor_zeros(&c, 32)) {
        return clst_err_set(
            err, CLST_E_MALFORMED,
            "TDREPORT offset 0x0c0: reserved bytes of REPORTMACSTRUCT are not zero");
    }
    if (!take_copy(&c, sizeof(t.mac), t.mac)) {
        return clst_err_set(err, CLST_E_INTERNAL, "TDREPORT: MAC");
    }
    /* TEE_TCB_INFO (239 bytes) and 17 reserved bytes */
    memcpy(t.tee_tcb_info, data + AZURE_TEE_TCB_INFO_OFF, AZURE_TEE_TCB_INFO_SIZE);
    if (!take_copy(&c, sizeof(t.tcb_valid), t.tcb_valid) ||
        !take_copy(&c, sizeof(t.tee_tcb_svn), t.tee_tcb_svn) ||
        !take_copy(&c, sizeof(t.mrseam), t.mrseam) ||
        !take_copy(&c, sizeof(t.mrsignerseam), t.mrsignerseam) ||
        !take_copy(&c, sizeof(t.seam_attributes), t.seam_attributes) ||
        !take_copy(&c, sizeof(t.tee_tcb_svn2), t.tee_tcb_svn2)) {
        return clst_err_set(err, CLST_E_INTERNAL, "TDREPORT: TEE_TCB_INFO");
    }
    if (!clst_cursor_zeros(&c, AZURE_TEE_TCB_INFO_SIZE - 144) ||
        !clst_cursor_zeros(&c,
                           AZURE_TDINFO_OFF - AZURE_TEE_TCB_INFO_OFF - AZURE_TEE_TCB_INFO_SIZE)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "TDREPORT offset 0x190: reserved bytes of TEE_TCB_INFO (or the 17 "
                            "after it) are not zero");
    }
    /* TDINFO (512 bytes) */
    memcpy(t.tdinfo, data + AZURE_TDINFO_OFF, AZURE_TDINFO_SIZE);
    if (!take_copy(&c, sizeof(t.td_attributes), t.td_attributes) ||
        !take_copy(&c, sizeof(t.xfam), t.xfam) || !take_copy(&c, sizeof(t.mrtd), t.mrtd) ||
        !take_copy(&c, sizeof(t.mrconfigid), t.mrconfigid) ||
        !take_copy(&c, sizeof(t.mrowner), t.mrowner) ||
        !take_copy(&c, sizeof(t.mrownerconfig), t.mrownerconfig) ||
        !take_copy(&c, sizeof(t.rtmr), &t.rtmr[0][0]) ||
        !take_copy(&c, sizeof(t.servtd_hash), t.servtd_hash)) {
        return clst_err_set(err, CLST_E_INTERNAL, "TDREPORT: TDINFO");
    }
    if (!clst_cursor_zeros(&c, 64) || c.left != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "TDREPORT offset 0x3c0: reserved bytes of TDINFO are not zero");
    }
    *out = t;
    return CLST_OK;
}

static enum clst_status
same_field(const char *name, const uint8_t *hcl, const uint8_t *quote, size_t n,
           struct clst_err *err)
{
    if (CRYPTO_memcmp(hcl, quote, n) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "azure-vtpm evidence: the TD quote does not describe the HCL's "
                            "TDREPORT: %s differs (the quote is for another TD, or the HCL report "
                            "was altered)",
                            name);
    }
    return CLST_OK;
}

enum clst_status
evidence_azure_tdx_bind(const struct azure_tdreport *td, const struct dcap_quote *q,
                        const uint8_t *var, size_t var_size, struct clst_err *err)
{
    uint8_t h384[CLST_SHA384_SIZE], h256[CLST_SHA256_SIZE];
    const struct dcap_td_report *b;
    enum clst_status rc;

    if (td == NULL || q == NULL || (var == NULL && var_size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "azure-vtpm: TDX binding without its inputs");
    }
    if (q->tee_type != DCAP_TEE_TDX ||
        (q->body_type != DCAP_BODY_TD10 && q->body_type != DCAP_BODY_TD15)) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "azure-vtpm evidence: \"td_quote\" is not a TDX quote");
    }
    b = &q->td;
    /* 1. The TDREPORT's own digests (its MAC covers them; only the TDX module can check that). */
    if (clst_hash(CLST_HASH_SHA384, td->tee_tcb_info, sizeof(td->tee_tcb_info), h384) != CLST_OK) {
        return clst_err_set(err, CLST_E_CRYPTO, "azure-vtpm evidence: cannot hash TEE_TCB_INFO");
    }
    if (CRYPTO_memcmp(h384, td->tee_tcb_info_hash, sizeof(h384)) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "azure-vtpm evidence: the HCL's TDREPORT is inconsistent: "
                            "TEE_TCB_INFO_HASH is not SHA-384 of its TEE_TCB_INFO");
    }
    if (clst_hash(CLST_HASH_SHA384, td->tdinfo, sizeof(td->tdinfo), h384) != CLST_OK) {
        return clst_err_set(err, CLST_E_CRYPTO, "azure-vtpm evidence: cannot hash TDINFO");
    }
    if (CRYPTO_memcmp(h384, td->tee_info_hash, sizeof(h384)) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "azure-vtpm evidence: the HCL's TDREPORT is inconsistent: "
                            "TEE_INFO_HASH is not SHA-384 of its TDINFO");
    }
    /* 2. The (verified) quote is of this TDREPORT. */
    const struct {
        const char *name;
        const uint8_t *hcl, *quote;
        size_t n;
    } f[] = {
        {"TEE_TCB_SVN", td->tee_tcb_svn, b->tee_tcb_svn, sizeof(b->tee_tcb_svn)},
        {"MRSEAM", td->mrseam, b->mrseam, sizeof(b->mrseam)},
        {"MRSIGNERSEAM", td->mrsignerseam, b->mrsignerseam, sizeof(b->mrsignerseam)},
        {"SEAM_ATTRIBUTES", td->seam_attributes, b->seam_attributes, sizeof(b->seam_attributes)},
        {"TD_ATTRIBUTES", td->td_attributes, b->td_attributes, sizeof(b->td_attributes)},
        {"XFAM", td->xfam, b->xfam, sizeof(b->xfam)},
        {"MRTD", td->mrtd, b->mrtd, sizeof(b->mrtd)},
        {"MRCONFIGID", td->mrconfigid, b->mrconfigid, sizeof(b->mrconfigid)},
        {"MROWNER", td->mrowner, b->mrowner, sizeof(b->mrowner)},
        {"MROWNERCONFIG", td->mrownerconfig, b->mrownerconfig, sizeof(b->mrownerconfig)},
        {"RTMR0", td->rtmr[0], b->rtmr[0], sizeof(b->rtmr[0])},
        {"RTMR1", td->rtmr[1], b->rtmr[1], sizeof(b->rtmr[1])},
        {"RTMR2", td->rtmr[2], b->rtmr[2], sizeof(b->rtmr[2])},
        {"RTMR3", td->rtmr[3], b->rtmr[3], sizeof(b->rtmr[3])},
        {"REPORTDATA", td->report_data, b->report_data, sizeof(b->report_data)},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if ((rc = same_field(f[i].name, f[i].hcl, f[i].quote, f[i].n, err)) != CLST_OK) {
            return rc;
        }
    }
    if (q->body_type == DCAP_BODY_TD15 &&
        ((rc = same_field("TEE_TCB_SVN2", td->tee_tcb_svn2, b->tee_tcb_svn2,
                          sizeof(b->tee_tcb_svn2), err)) != CLST_OK ||
         (rc = same_field("MRSERVICETD", td->servtd_hash, b->mrservicetd, sizeof(b->mrservicetd),
                          err)) != CLST_OK)) {
        return rc;
    }
    /* 3. The quote vouches for the variable data (and so for HCLAkPub). */
    if (clst_sha256(var != NULL ? var : (const uint8_t *)"", var_size, h256) != CLST_OK) {
        return clst_err_set(err, CLST_E_CRYPTO,
                            "azure-vtpm evidence: cannot hash the variable data");
    }
    if (CRYPTO_memcmp(h256, b->report_data, sizeof(h256)) != 0 ||
        !evidence_all_zero(b->report_data + sizeof(h256), sizeof(b->report_data) - sizeof(h256))) {
        return clst_err_set(
            err, CLST_E_VERIFY,
            "azure-vtpm evidence: the HCL variable data is not bound to the TD "
            "quote (its REPORTDATA must be SHA-256 of the variable data and 32 zero "
            "bytes): the attestation key in it is not vouched for");
    }
    return CLST_OK;
}

/* ---- the HCL report (continued) ------------------------------------------------------------- */

enum clst_status
evidence_azure_hcl_parse(const uint8_t *data, size_t size, struct azure_hcl *out,
                         struct clst_err *err)
{
    struct azure_hcl h;
    struct clst_cursor c;
    const uint8_t *magic = NULL, *hw = NULL;
    enum clst_status rc;

    if ((data == NULL && size != 0) || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "azure HCL report: no input or no output given");
    }
    if (size > AZURE_HCL_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "azure HCL report: %zu bytes, more than the limit of %u", size,
                            AZURE_HCL_MAX_SIZE);
    }
    if (size < AZURE_HCL_VAR_OFFSET) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: %zu bytes, shorter than its fixed part (%u bytes); "
                            "pass the whole vTPM NV index 0x01400001",
                            size, AZURE_HCL_VAR_OFFSET);
    }
    memset(&h, 0, sizeof(h));
    c = clst_cursor_make(data, size);
    if (!clst_cursor_take(&c, 4, &magic) || memcmp(magic, AZURE_HCL_MAGIC, 4) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: offset 0x000: the magic is not \"HCLA\" (not an "
                            "HCL attestation report)");
    }
    if (!clst_cursor_le32(&c, &h.version) || !clst_cursor_le32(&c, &h.report_size) ||
        !clst_cursor_le32(&c, &h.request_type) || !clst_cursor_le32(&c, &h.status)) {
        return clst_err_set(err, CLST_E_INTERNAL, "azure HCL report: header");
    }
    if (h.version < AZURE_HCL_MIN_VERSION || h.version > AZURE_HCL_MAX_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: offset 0x004: version %u is unknown (1 and 2 are "
                            "supported)",
                            (unsigned)h.version);
    }
    if (h.request_type != AZURE_HCL_REQUEST_TYPE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: offset 0x00c: request type %u is not 2 (an "
                            "attestation report)",
                            (unsigned)h.request_type);
    }
    if (h.status != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: offset 0x010: status %u (the paravisor reports an "
                            "error; no report was produced)",
                            (unsigned)h.status);
    }
    if (!clst_cursor_zeros(&c, AZURE_HCL_HEADER_SIZE - 20)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: offset 0x014: reserved header bytes are not zero");
    }
    if (!clst_cursor_take(&c, AZURE_HCL_HW_SIZE, &hw) || !clst_cursor_le32(&c, &h.data_size) ||
        !clst_cursor_le32(&c, &h.igvm_version) || !clst_cursor_le32(&c, &h.report_type) ||
        !clst_cursor_le32(&c, &h.hash_type) || !clst_cursor_le32(&c, &h.var_size)) {
        return clst_err_set(err, CLST_E_INTERNAL, "azure HCL report: fixed part");
    }
    if (h.igvm_version != AZURE_IGVM_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: offset 0x4c4: IGVM request version %u is unknown "
                            "(1 is supported)",
                            (unsigned)h.igvm_version);
    }
    if (h.hash_type != AZURE_HASH_TYPE_SHA256) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: offset 0x4cc: report-data hash type %u is unknown "
                            "(1 = SHA-256 is supported)",
                            (unsigned)h.hash_type);
    }
    if (h.var_size == 0 || h.var_size > AZURE_VAR_MAX_SIZE || h.var_size > c.left) {
        return clst_err_set(
            err, CLST_E_MALFORMED,
            "azure HCL report: offset 0x4d0: variable data of %u bytes does not fit "
            "the %zu bytes that follow (truncated report?)",
            (unsigned)h.var_size, c.left);
    }
    if (h.report_size != AZURE_HCL_VAR_OFFSET + h.var_size ||
        h.data_size != AZURE_HCL_IGVM_HDR_SIZE + h.var_size) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: the sizes disagree (report_size %u, data_size %u, "
                            "variable data %u: expected %u and %u)",
                            (unsigned)h.report_size, (unsigned)h.data_size, (unsigned)h.var_size,
                            (unsigned)(AZURE_HCL_VAR_OFFSET + h.var_size),
                            (unsigned)(AZURE_HCL_IGVM_HDR_SIZE + h.var_size));
    }
    /* The rest of the NV buffer is padding: zero, or this is not the buffer the paravisor wrote. */
    if (!evidence_all_zero(data + h.report_size, size - h.report_size)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: offset 0x%x: bytes after the report (%u bytes) are "
                            "not zero padding",
                            (unsigned)h.report_size, (unsigned)h.report_size);
    }
    switch (h.report_type) {
    case AZURE_REPORT_TYPE_SNP:
        rc = evidence_sevsnp_report_parse(hw, AZURE_HCL_HW_SIZE, &h.snp, err);
        if (rc != CLST_OK) {
            return clst_err_prefix(err, "azure HCL report: the SNP report at offset 0x020");
        }
        break;
    case AZURE_REPORT_TYPE_TDX:
        /* A 1024-byte TDREPORT and zero padding. Nothing in it is trusted until a verified TD
         * quote matches it (evidence_azure_tdx_bind). */
        rc = evidence_azure_tdreport_parse(hw, AZURE_TDREPORT_SIZE, &h.td, err);
        if (rc != CLST_OK) {
            return clst_err_prefix(err, "azure HCL report: the TDREPORT at offset 0x020");
        }
        if (!evidence_all_zero(hw + AZURE_TDREPORT_SIZE, AZURE_HCL_HW_SIZE - AZURE_TDREPORT_SIZE)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "azure HCL report: offset 0x420: the padding after the TDREPORT "
                                "is not zero");
        }
        break;
    default:
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure HCL report: offset 0x4c8: report type %u is unknown (2 = "
                            "SEV-SNP, 4 = TDX)",
                            (unsigned)h.report_type);
    }
    *out = h;
    return CLST_OK;
}

/* ---- the container -------------------------------------------------------------------------- */

enum field_enc {
    ENC_HEX,    /* "tpm_quote" members */
    ENC_B64URL, /* "hcl_report" (trailing '=' padding allowed) */
    ENC_B64,    /* "vcek" DER: base64, or base64url with optional padding */
};

/* Decodes a byte field given as a JSON array of integers 0..255 (trustee v0) or as a string in
 * `enc`, into dst (at most cap bytes; CLST_E_LIMIT beyond). */
static enum clst_status
field_bytes(const json_t *v, const char *name, enum field_enc enc, uint8_t *dst, size_t cap,
            size_t *out_size, struct clst_err *err)
{
    if (json_is_array(v)) {
        size_t n = json_array_size(v);
        if (n > cap) {
            return clst_err_set(err, CLST_E_LIMIT,
                                "azure-vtpm evidence: \"%s\" has %zu bytes, more than the limit of "
                                "%zu",
                                name, n, cap);
        }
        for (size_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, i);
            json_int_t b = json_is_integer(e) ? json_integer_value(e) : -1;
            if (b < 0 || b > 255) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "azure-vtpm evidence: \"%s\"[%zu] is not a byte (an integer "
                                    "0..255)",
                                    name, i);
            }
            dst[i] = (uint8_t)b;
        }
        *out_size = n;
        return CLST_OK;
    }
    if (!json_is_string(v)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure-vtpm evidence: \"%s\" must be a string or an array of bytes",
                            name);
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    struct clst_buf b;
    enum clst_status rc;
    clst_buf_init(&b, cap);
    switch (enc) {
    case ENC_HEX:
        rc = clst_hex_decode(s, len, &b);
        break;
    case ENC_B64URL:
        for (int k = 0; k < 2 && len > 0 && s[len - 1] == '='; k++) {
            len--;
        }
        rc = clst_b64url_decode(s, len, &b);
        break;
    default:
        /* trustee writes the VCEK base64url with padding; accept the standard alphabet too. */
        rc = clst_b64_decode(s, len, &b);
        if (rc == CLST_E_MALFORMED) {
            clst_buf_reset(&b);
            for (int k = 0; k < 2 && len > 0 && s[len - 1] == '='; k++) {
                len--;
            }
            rc = clst_b64url_decode(s, len, &b);
        }
        break;
    }
    if (rc == CLST_OK && b.size > cap) {
        rc = CLST_E_LIMIT;
    }
    if (rc == CLST_OK && b.size > 0) {
        memcpy(dst, b.data, b.size);
    }
    *out_size = rc == CLST_OK ? b.size : 0;
    clst_buf_cleanup(&b);
    if (rc == CLST_E_LIMIT || rc == CLST_E_NOMEM) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "azure-vtpm evidence: \"%s\" decodes to more than %zu bytes, the limit",
                            name, cap);
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, CLST_E_MALFORMED, "azure-vtpm evidence: \"%s\" is not valid %s",
                            name,
                            enc == ENC_HEX      ? "hex"
                            : enc == ENC_B64URL ? "base64url"
                                                : "base64");
    }
    return CLST_OK;
}

static bool
looks_like_pem(const uint8_t *p, size_t n)
{
    static const char tag[] = "-----BEGIN ";
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) {
        i++;
    }
    return n - i >= sizeof(tag) - 1 && memcmp(p + i, tag, sizeof(tag) - 1) == 0;
}

/* The PCR selection's SHA-256 bank as a mask of PCRs 0..23 (other banks and higher PCRs are left
 * for the tpm verifier to refuse). */
static uint32_t
sha256_mask(const TPMS_ATTEST *a)
{
    const TPML_PCR_SELECTION *sel = &a->attested.quote.pcrSelect;
    uint32_t mask = 0;
    for (uint32_t i = 0; i < sel->count && i < TPM2_NUM_PCR_BANKS; i++) {
        const TPMS_PCR_SELECTION *s = &sel->pcrSelections[i];
        if (s->hash != TPM2_ALG_SHA256) {
            continue;
        }
        for (unsigned pcr = 0; pcr < TPM_PCR_COUNT && pcr / 8 < s->sizeofSelect; pcr++) {
            if ((s->pcrSelect[pcr / 8] & (1u << (pcr % 8))) != 0) {
                mask |= 1u << pcr;
            }
        }
    }
    return mask;
}

static enum clst_status
parse_quote(json_t *q, struct azure_evidence *ev, struct clst_err *err)
{
    const char *key;
    const json_t *v, *sig = NULL, *msg = NULL, *pcrs = NULL;
    struct tpm_evidence *t = &ev->tpm;
    enum clst_status rc;

    if (!json_is_object(q)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure-vtpm evidence: the quote must be an object {signature, "
                            "message, pcrs}");
    }
    json_object_foreach(q, key, v)
    {
        if (strcmp(key, "signature") == 0) {
            sig = v;
        } else if (strcmp(key, "message") == 0) {
            msg = v;
        } else if (strcmp(key, "pcrs") == 0) {
            pcrs = v;
        } else {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "azure-vtpm evidence: unknown quote member \"%.40s\" (signature, "
                                "message and pcrs are known)",
                                key);
        }
    }
    if (sig == NULL || msg == NULL || pcrs == NULL) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure-vtpm evidence: the quote needs \"signature\", \"message\" and "
                            "\"pcrs\"");
    }
    if ((rc = field_bytes(msg, "message", ENC_HEX, t->quote, sizeof(t->quote), &t->quote_size,
                          err)) != CLST_OK ||
        (rc = field_bytes(sig, "signature", ENC_HEX, ev->tpm_sig, sizeof(ev->tpm_sig),
                          &ev->tpm_sig_size, err)) != CLST_OK) {
        return rc;
    }
    if (ev->tpm_sig_size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure-vtpm evidence: the quote's signature is "
                            "empty");
    }
    rc = evidence_tpm_attest_unmarshal(t->quote, t->quote_size, &t->attest, err);
    if (rc != CLST_OK) {
        return clst_err_prefix(err, "azure-vtpm evidence: the quote message");
    }
    /* Azure clients send the raw RSA signature (LAYOUTS.md quirk 11); tools that keep the TPM's
     * own output send a TPMT_SIGNATURE. An RSA TPMT_SIGNATURE is taken as it is; anything else is
     * the raw signature of the AK's scheme, RSASSA-PKCS1-v1_5 SHA-256. Either way it must verify
     * with HCLAkPub, so reading one form as the other can only fail. */
    TPMT_SIGNATURE wrapped;
    if (evidence_tpm_signature_unmarshal(ev->tpm_sig, ev->tpm_sig_size, &wrapped, NULL) ==
            CLST_OK &&
        (wrapped.sigAlg == TPM2_ALG_RSASSA || wrapped.sigAlg == TPM2_ALG_RSAPSS)) {
        t->sig = wrapped;
    } else if (ev->tpm_sig_size > sizeof(t->sig.signature.rsassa.sig.buffer)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure-vtpm evidence: the quote's signature is %zu bytes, longer than "
                            "an RSA-4096 signature",
                            ev->tpm_sig_size);
    } else {
        memset(&t->sig, 0, sizeof(t->sig));
        t->sig.sigAlg = TPM2_ALG_RSASSA;
        t->sig.signature.rsassa.hash = TPM2_ALG_SHA256;
        t->sig.signature.rsassa.sig.size = (uint16_t)ev->tpm_sig_size;
        memcpy(t->sig.signature.rsassa.sig.buffer, ev->tpm_sig, ev->tpm_sig_size);
    }

    if (!json_is_array(pcrs) || json_array_size(pcrs) != TPM_PCR_COUNT) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure-vtpm evidence: \"pcrs\" must be the %u SHA-256 PCR values 0..23",
                            TPM_PCR_COUNT);
    }
    struct tpm_pcr_bank *b = &t->banks[0];
    b->alg = TPM_ALG_SHA256_ID;
    b->digest_size = CLST_SHA256_SIZE;
    for (size_t i = 0; i < TPM_PCR_COUNT; i++) {
        char name[16];
        size_t n = 0;
        snprintf(name, sizeof(name), "pcrs[%zu]", i);
        rc = field_bytes(json_array_get(pcrs, i), name, ENC_HEX, b->value[i], CLST_SHA256_SIZE, &n,
                         err);
        if (rc != CLST_OK) {
            return rc == CLST_E_LIMIT ? clst_err_set(err, CLST_E_MALFORMED,
                                                     "azure-vtpm evidence: %s is not a SHA-256 "
                                                     "value (32 bytes)",
                                                     name)
                                      : rc;
        }
        if (n != CLST_SHA256_SIZE) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "azure-vtpm evidence: %s is %zu bytes, not a SHA-256 value (32)",
                                name, n);
        }
    }
    /* Only the quoted values are kept: the others are not vouched for by anything. */
    b->present = sha256_mask(&t->attest);
    t->bank_count = 1;
    return CLST_OK;
}

/* The TD quote of a TDX CVM: base64url (trustee az-tdx-vtpm), base64, or an array of bytes. */
static enum clst_status
parse_td_quote(const json_t *v, struct azure_evidence *ev, struct clst_err *err)
{
    enum clst_status rc;
    if (v == NULL) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure-vtpm evidence: the HCL report holds a TDX TDREPORT but there is "
                            "no \"td_quote\"; a TDREPORT is not signed, so send the TD quote the "
                            "host made of it (Azure IMDS /acc/tdquote) as \"td_quote\"");
    }
    rc = field_bytes(v, "td_quote", ENC_B64, ev->td_quote_raw, sizeof(ev->td_quote_raw),
                     &ev->td_quote_size, err);
    if (rc != CLST_OK) {
        return rc;
    }
    rc = dcap_quote_parse(ev->td_quote_raw, ev->td_quote_size, &ev->tdq, err);
    if (rc != CLST_OK) {
        return clst_err_prefix(err, "azure-vtpm evidence: \"td_quote\"");
    }
    if (ev->tdq.tee_type != DCAP_TEE_TDX) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "azure-vtpm evidence: \"td_quote\" is an SGX quote, not a TDX quote");
    }
    return CLST_OK;
}

enum clst_status
evidence_azure_parse(const uint8_t *data, size_t size, struct azure_evidence *out,
                     struct clst_err *err)
{
    enum clst_status rc = CLST_E_MALFORMED;
    json_t *doc = NULL;
    json_error_t jerr;
    const char *key;
    json_t *v;
    json_t *version = NULL, *report = NULL, *quote = NULL, *vcek = NULL, *td_quote = NULL;

    if ((data == NULL && size != 0) || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "azure-vtpm evidence: no input or no output");
    }
    memset(out, 0, sizeof(*out));
    if (size > AZURE_EVIDENCE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "azure-vtpm evidence is %zu bytes, more than the limit of %u", size,
                            AZURE_EVIDENCE_MAX_SIZE);
    }
    doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "azure-vtpm evidence: not a JSON object (%s); pass the evidence JSON "
                          "{hcl_report, tpm_quote, vcek}",
                          doc == NULL ? jerr.text : "another JSON type");
        goto out;
    }
    json_object_foreach(doc, key, v)
    {
        json_t **slot = NULL;
        if (strcmp(key, "version") == 0) {
            slot = &version;
        } else if (strcmp(key, "report") == 0 || strcmp(key, "hcl_report") == 0) {
            slot = &report;
        } else if (strcmp(key, "quote") == 0 || strcmp(key, "tpm_quote") == 0) {
            slot = &quote;
        } else if (strcmp(key, "vcek") == 0) {
            slot = &vcek;
        } else if (strcmp(key, "td_quote") == 0 || strcmp(key, "tdx_quote") == 0) {
            slot = &td_quote;
        } else {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "azure-vtpm evidence: unknown member \"%.40s\" (version, "
                              "hcl_report, tpm_quote, vcek, td_quote; or report, quote, vcek)",
                              key);
            goto out;
        }
        if (*slot != NULL) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "azure-vtpm evidence: \"%.40s\" given twice (under both names)", key);
            goto out;
        }
        *slot = v;
    }
    if (version != NULL) {
        json_int_t n = json_is_integer(version) ? json_integer_value(version) : -1;
        if (n != 1 && n != 2) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "azure-vtpm evidence: \"version\" must be 1 or 2");
            goto out;
        }
        out->container_version = (uint32_t)n;
    }
    if (report == NULL || quote == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "azure-vtpm evidence: \"%s\" is missing",
                          report == NULL ? "hcl_report" : "tpm_quote");
        goto out;
    }
    if ((rc = field_bytes(report, "hcl_report", ENC_B64URL, out->hcl_raw, sizeof(out->hcl_raw),
                          &out->hcl_size, err)) != CLST_OK) {
        goto out;
    }
    if ((rc = evidence_azure_hcl_parse(out->hcl_raw, out->hcl_size, &out->hcl, err)) != CLST_OK) {
        goto out;
    }
    out->snp.report = out->hcl.snp;
    out->snp.has_table = false;
    if ((rc = parse_quote(quote, out, err)) != CLST_OK) {
        goto out;
    }
    if (out->hcl.report_type == AZURE_REPORT_TYPE_TDX) {
        if (vcek != NULL) {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "azure-vtpm evidence: \"vcek\" is for SEV-SNP, but the HCL report "
                              "holds a TDX TDREPORT");
            goto out;
        }
        if ((rc = parse_td_quote(td_quote, out, err)) != CLST_OK) {
            goto out;
        }
    } else if (td_quote != NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "azure-vtpm evidence: \"td_quote\" is for TDX, but the HCL report holds "
                          "an SEV-SNP report");
        goto out;
    }
    if (vcek != NULL) {
        if (json_is_string(vcek) &&
            looks_like_pem((const uint8_t *)json_string_value(vcek), json_string_length(vcek))) {
            if (json_string_length(vcek) > sizeof(out->vcek)) {
                rc = clst_err_set(err, CLST_E_LIMIT,
                                  "azure-vtpm evidence: \"vcek\" is more than %zu bytes",
                                  sizeof(out->vcek));
                goto out;
            }
            out->vcek_size = json_string_length(vcek);
            memcpy(out->vcek, json_string_value(vcek), out->vcek_size);
            out->vcek_pem = true;
        } else if ((rc = field_bytes(vcek, "vcek", ENC_B64, out->vcek, sizeof(out->vcek),
                                     &out->vcek_size, err)) != CLST_OK) {
            goto out;
        }
    }
    out->tpm.result = &out->tpm.result_store;
    out->result = &out->result_store;
    rc = CLST_OK;
out:
    json_decref(doc);
    if (rc != CLST_OK) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}

/* ---- verify --------------------------------------------------------------------------------- */

/* Appends the DER of every certificate in a PEM text to out. */
static enum clst_status
append_pem_der(struct clst_buf *out, const uint8_t *pem, size_t size, const char *what,
               struct clst_err *err)
{
    enum clst_status rc = CLST_E_MALFORMED;
    BIO *bio = NULL;
    X509 *x = NULL;
    size_t count = 0;

    if (size > INT_MAX || (bio = BIO_new_mem_buf(pem, (int)size)) == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);
        X509_free(x);
        if (n <= 0) {
            rc = clst_err_set(err, CLST_E_CRYPTO, "cannot encode a certificate of %s", what);
            goto out;
        }
        rc = clst_buf_append(out, der, (size_t)n);
        OPENSSL_free(der);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, CLST_E_LIMIT, "%s: too many certificates", what);
            goto out;
        }
        count++;
    }
    /* The loop ends on "no start line" after the last certificate; anything else is a bad one. */
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "%s: a PEM certificate does not decode", what);
        goto out;
    }
    if (count == 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "%s: no PEM certificate in it", what);
        goto out;
    }
    rc = CLST_OK;
out:
    BIO_free(bio);
    return rc;
}

static enum clst_status
append_certs(struct clst_buf *out, const uint8_t *data, size_t size, const char *what,
             struct clst_err *err)
{
    if (size == 0) {
        return CLST_OK;
    }
    if (looks_like_pem(data, size)) {
        return append_pem_der(out, data, size, what, err);
    }
    if (data[0] != 0x30) {
        return clst_err_set(err, CLST_E_MALFORMED, "%s: neither PEM nor DER certificates", what);
    }
    if (clst_buf_append(out, data, size) != CLST_OK) {
        return clst_err_set(err, CLST_E_LIMIT, "%s: too large", what);
    }
    return CLST_OK;
}

/* The certificates the SNP verifier may use: the evidence's VCEK, the caller's endorsements and
 * the built-in ASKs, as concatenated DER. */
static enum clst_status
build_endorsements(const struct azure_evidence *ev, const struct clst_evidence_input *in,
                   struct clst_buf *out, struct clst_err *err)
{
    enum clst_status rc;
    if (ev->vcek_size > 0) {
        rc = ev->vcek_pem ? append_pem_der(out, ev->vcek, ev->vcek_size, "azure-vtpm \"vcek\"", err)
                          : append_certs(out, ev->vcek, ev->vcek_size, "azure-vtpm \"vcek\"", err);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    rc = append_certs(out, in->endorsements, in->endorsements_size, "azure-vtpm endorsements", err);
    if (rc != CLST_OK) {
        return rc;
    }
    for (size_t i = 0; i < sizeof(builtin_asks) / sizeof(builtin_asks[0]); i++) {
        rc = append_pem_der(out, (const uint8_t *)builtin_asks[i], strlen(builtin_asks[i]),
                            "built-in AMD ASK", err);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    return CLST_OK;
}

static const json_t *
find_ak_jwk(const json_t *var, struct clst_err *err)
{
    const json_t *keys = json_object_get(var, "keys");
    const json_t *found = NULL;
    size_t i;
    json_t *k;

    if (!json_is_array(keys)) {
        clst_err_set(err, CLST_E_VERIFY,
                     "azure-vtpm evidence: the HCL variable data has no \"keys\" array, so no "
                     "attestation key (HCLAkPub)");
        return NULL;
    }
    json_array_foreach(keys, i, k)
    {
        const json_t *kid = json_object_get(k, "kid");
        if (json_is_string(kid) && strcmp(json_string_value(kid), AZURE_AK_KID) == 0) {
            if (found != NULL) {
                clst_err_set(err, CLST_E_VERIFY,
                             "azure-vtpm evidence: the HCL variable data has two HCLAkPub keys");
                return NULL;
            }
            found = k;
        }
    }
    if (found == NULL) {
        clst_err_set(err, CLST_E_VERIFY,
                     "azure-vtpm evidence: the HCL variable data has no key with kid "
                     "\"HCLAkPub\" (the vTPM attestation key)");
    }
    return found;
}

enum clst_status
evidence_azure_ak_from_var(const uint8_t *var, size_t var_size, EVP_PKEY **out,
                           struct clst_err *err)
{
    enum clst_status rc = CLST_E_VERIFY;
    json_error_t jerr;
    json_t *doc = NULL;
    EVP_PKEY *key = NULL;
    const json_t *jwk, *kty;

    if (var == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "azure-vtpm: no variable data");
    }
    doc = json_loadb((const char *)var, var_size, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL || !json_is_object(doc)) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "azure-vtpm evidence: the HCL variable data is not a JSON object (%s), "
                          "so the attestation key (HCLAkPub) cannot be read",
                          doc == NULL ? jerr.text : "another JSON type");
        goto out;
    }
    if ((jwk = find_ak_jwk(doc, err)) == NULL) {
        rc = CLST_E_VERIFY;
        goto out;
    }
    kty = json_object_get(jwk, "kty");
    if (!json_is_string(kty) || strcmp(json_string_value(kty), "RSA") != 0 ||
        json_object_get(jwk, "d") != NULL) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "azure-vtpm evidence: HCLAkPub is not an RSA public key");
        goto out;
    }
    if ((rc = clst_pkey_from_jwk(jwk, &key, err)) != CLST_OK) {
        rc = clst_err_prefix(err, "azure-vtpm evidence: HCLAkPub");
        rc = rc == CLST_E_MALFORMED ? CLST_E_VERIFY : rc;
        if (err != NULL) {
            err->status = rc;
        }
        goto out;
    }
    if (clst_pkey_kind(key) != CLST_KEY_RSA || clst_pkey_bits(key) < CLST_RSA_MIN_BITS ||
        clst_pkey_bits(key) > CLST_RSA_MAX_BITS) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "azure-vtpm evidence: HCLAkPub is an RSA key of %d bits (%d to %d are "
                          "accepted)",
                          clst_pkey_bits(key), CLST_RSA_MIN_BITS, CLST_RSA_MAX_BITS);
        goto out;
    }
    *out = key;
    key = NULL;
    rc = CLST_OK;
out:
    EVP_PKEY_free(key);
    json_decref(doc);
    return rc;
}

static enum clst_status
check_binding(const struct azure_evidence *ev, struct clst_err *err)
{
    const uint8_t *var = ev->hcl_raw + AZURE_HCL_VAR_OFFSET;
    const uint8_t *rd = ev->hcl.snp.report_data;
    uint8_t digest[CLST_SHA256_SIZE];
    enum clst_status rc = clst_sha256(var, ev->hcl.var_size, digest);

    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "azure-vtpm evidence: cannot hash the variable data");
    }
    if (CRYPTO_memcmp(digest, rd, sizeof(digest)) != 0 ||
        !evidence_all_zero(rd + sizeof(digest), SEVSNP_REPORT_DATA_SIZE - sizeof(digest))) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "azure-vtpm evidence: the HCL variable data is not bound to the "
                            "hardware report (REPORT_DATA must be SHA-256 of the variable data and "
                            "32 zero bytes): the attestation key in it is not vouched for");
    }
    return CLST_OK;
}

static enum clst_status
spki_sha256(EVP_PKEY *key, uint8_t out[static CLST_SHA256_SIZE], struct clst_err *err)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(key, &der);
    enum clst_status rc = n > 0 ? clst_sha256(der, (size_t)n, out) : CLST_E_CRYPTO;
    OPENSSL_free(der);
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "azure-vtpm evidence: cannot encode HCLAkPub");
    }
    return CLST_OK;
}

/* SNP inside: the hardware report, VMPL 0, and the binding of the variable data. */
static enum clst_status
verify_snp(const struct azure_evidence *ev, const struct clst_evidence_input *in,
           const struct sevsnp_roots *roots, struct clst_buf *certs, struct clst_err *err)
{
    enum clst_status rc;
    if (roots == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "azure-vtpm: no AMD roots");
    }
    /* 1. The hardware report, by the sevsnp kind's verifier. */
    if ((rc = build_endorsements(ev, in, certs, err)) != CLST_OK) {
        return rc;
    }
    struct clst_evidence_input snp_in = *in;
    snp_in.endorsements = certs->data;
    snp_in.endorsements_size = certs->size;
    rc = evidence_sevsnp_verify_with(&ev->snp, ev->hcl_raw + AZURE_HCL_HW_OFFSET,
                                     SEVSNP_REPORT_SIZE, &snp_in, roots, err);
    if (rc != CLST_OK) {
        return clst_err_prefix(err, "azure-vtpm evidence: the hardware report");
    }
    /* Only the paravisor (HCL) runs at VMPL 0 in an Azure CVM: a report requested from a higher
     * VMPL was made by the guest, which could have put any key's hash in REPORT_DATA. Whatever
     * the sevsnp options allow, this kind accepts VMPL 0 only. */
    if (ev->snp.report.vmpl != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "azure-vtpm evidence: the SNP report was requested at VMPL %u, not by "
                            "the paravisor at VMPL 0, so it does not vouch for the HCL variable "
                            "data",
                            (unsigned)ev->snp.report.vmpl);
    }
    /* 2. The variable data is what the hardware report vouches for. */
    return check_binding(ev, err);
}

/* TDX inside: the TD quote (Intel DCAP), then the TDREPORT and variable data against it. */
static enum clst_status
verify_tdx(const struct azure_evidence *ev, const struct clst_evidence_input *in,
           STACK_OF(X509) *intel_roots, struct clst_err *err)
{
    struct clst_evidence_input q_in;
    enum clst_status rc;

    if (ev->td_quote_size == 0 || ev->td_quote_size > sizeof(ev->td_quote_raw) ||
        ev->tdq.result == NULL) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "azure-vtpm evidence: a TDX HCL report without a TD quote is never "
                            "accepted (a TDREPORT is only MAC'd, not signed)");
    }
    if (intel_roots == NULL || sk_X509_num(intel_roots) <= 0) {
        return clst_err_set(err, CLST_E_INVAL, "azure-vtpm: no Intel root for the TD quote");
    }
    if (in->endorsements == NULL || in->endorsements_size == 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "azure-vtpm evidence: the TD quote needs Intel DCAP collateral (pass "
                            "--collateral DIR, or configure the service with it)");
    }
    memset(&q_in, 0, sizeof(q_in));
    q_in.evidence = ev->td_quote_raw;
    q_in.evidence_size = ev->td_quote_size;
    q_in.endorsements = in->endorsements;
    q_in.endorsements_size = in->endorsements_size;
    q_in.roots = intel_roots;
    q_in.crls = in->crls;
    q_in.at = in->at;
    q_in.tcb_statuses = in->tcb_statuses;
    rc = dcap_verify(&ev->tdq, ev->td_quote_raw, ev->td_quote_size, &q_in, "tdx", err);
    if (rc != CLST_OK) {
        return clst_err_prefix(err, "azure-vtpm evidence: the TD quote");
    }
    return evidence_azure_tdx_bind(&ev->hcl.td, &ev->tdq, ev->hcl_raw + AZURE_HCL_VAR_OFFSET,
                                   ev->hcl.var_size, err);
}

enum clst_status
evidence_azure_verify_with(const struct azure_evidence *ev, const struct clst_evidence_input *in,
                           const struct sevsnp_roots *roots, STACK_OF(X509) *intel_roots,
                           struct clst_err *err)
{
    enum clst_status rc = CLST_E_VERIFY;
    struct clst_buf certs;
    struct clst_evidence_input tpm_in;
    struct azure_result res;
    EVP_PKEY *ak = NULL;

    clst_buf_init(&certs, SEVSNP_ENDORSEMENTS_MAX_SIZE);
    memset(&res, 0, sizeof(res));
    if (ev == NULL || in == NULL || ev->result == NULL || ev->tpm.result == NULL ||
        ev->hcl_size > sizeof(ev->hcl_raw) || ev->hcl_size < AZURE_HCL_VAR_OFFSET ||
        ev->hcl.var_size > ev->hcl_size - AZURE_HCL_VAR_OFFSET) {
        rc = clst_err_set(err, CLST_E_INVAL, "azure-vtpm: inconsistent verification input");
        goto out;
    }
    if (ev->hcl.report_type == AZURE_REPORT_TYPE_TDX) {
        /* 1-2 (TDX). The TD quote, and the TDREPORT and variable data it vouches for. */
        if ((rc = verify_tdx(ev, in, intel_roots, err)) != CLST_OK) {
            goto out;
        }
    } else if ((rc = verify_snp(ev, in, roots, &certs, err)) != CLST_OK) {
        goto out;
    }
    /* 3. The attestation key the variable data carries. */
    rc = evidence_azure_ak_from_var(ev->hcl_raw + AZURE_HCL_VAR_OFFSET, ev->hcl.var_size, &ak, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if ((rc = spki_sha256(ak, res.ak_spki_sha256, err)) != CLST_OK) {
        goto out;
    }
    /* 4. The quote, by the tpm kind's verifier with HCLAkPub as the enrolled key. */
    memset(&tpm_in, 0, sizeof(tpm_in));
    tpm_in.at = in->at;
    tpm_in.tpm_ak = ak;
    tpm_in.tpm_allow_sha1 = false;
    rc = evidence_tpm_ops.verify(&ev->tpm, ev->tpm.quote, ev->tpm.quote_size, &tpm_in, err);
    if (rc != CLST_OK) {
        rc = clst_err_prefix(err, "azure-vtpm evidence: the vTPM quote (signed by HCLAkPub)");
        goto out;
    }
    res.done = true;
    *ev->result = res;
    rc = CLST_OK;
out:
    EVP_PKEY_free(ak);
    clst_buf_cleanup(&certs);
    return rc;
}

/* ---- the kind ------------------------------------------------------------------------------- */

static enum clst_status
azure_parse(const uint8_t *data, size_t size, void *parsed, struct clst_err *err)
{
    return evidence_azure_parse(data, size, parsed, err);
}

static enum clst_status
azure_verify(const void *parsed, const uint8_t *data, size_t size,
             const struct clst_evidence_input *in, struct clst_err *err)
{
    const struct azure_evidence *ev = parsed;
    const struct sevsnp_roots *roots = NULL;
    STACK_OF(X509) *intel = NULL;
    enum clst_status rc;
    (void)data;
    (void)size;
    /* The anchors are always the ones compiled in (in->roots selects nothing here). */
    if (ev->hcl.report_type == AZURE_REPORT_TYPE_TDX) {
        if ((rc = clst_evidence_intel_roots(&intel, err)) != CLST_OK) {
            return rc;
        }
    } else if ((rc = evidence_sevsnp_builtin_roots(&roots, err)) != CLST_OK) {
        return rc;
    }
    rc = evidence_azure_verify_with(ev, in, roots, intel, err);
    sk_X509_pop_free(intel, X509_free);
    return rc;
}

static bool
azure_is_debuggable(const void *parsed)
{
    const struct azure_evidence *ev = parsed;
    if (ev->hcl.report_type == AZURE_REPORT_TYPE_TDX) {
        /* TD_ATTRIBUTES bit 0 (DEBUG) of the verified quote. */
        return (ev->tdq.td.td_attributes[0] & 1u) != 0;
    }
    return (ev->hcl.snp.policy & SEVSNP_POLICY_DEBUG) != 0;
}

static const uint8_t *
azure_report_data(const void *parsed, size_t *out_size)
{
    const struct azure_evidence *ev = parsed;
    *out_size = ev->tpm.attest.extraData.size;
    return ev->tpm.attest.extraData.buffer;
}

/* ---- claims --------------------------------------------------------------------------------- */

static enum clst_status
set_new(json_t *obj, const char *name, json_t *value)
{
    if (value == NULL) {
        return CLST_E_NOMEM;
    }
    return json_object_set_new(obj, name, value) == 0 ? CLST_OK : CLST_E_NOMEM;
}

static enum clst_status
set_hex(json_t *obj, const char *name, const uint8_t *bytes, size_t size)
{
    char hex[2 * 64 + 1];
    if (2 * size + 1 > sizeof(hex) || clst_hex_to_str(bytes, size, hex, sizeof(hex)) != CLST_OK) {
        return CLST_E_INTERNAL;
    }
    return set_new(obj, name, json_string(hex));
}

/* The hardware verdict: the sevsnp (or tdx) kind's claims, and the variable data as
 * x-ms-runtime. For TDX the claims come from the verified TD quote, never from the TDREPORT. */
static enum clst_status
tee_claims(const struct azure_evidence *ev, const json_t *var, json_t *claims, struct clst_err *err)
{
    json_t *tee = json_object();
    enum clst_status rc;

    if (tee == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    rc = ev->hcl.report_type == AZURE_REPORT_TYPE_TDX
             ? evidence_tdx_ops.claims(&ev->tdq, tee, err)
             : evidence_sevsnp_ops.claims(&ev->snp, tee, err);
    if (rc == CLST_OK) {
        rc = set_new(tee, AZURE_CLAIM_RUNTIME, json_deep_copy(var));
    }
    if (rc == CLST_OK) {
        return set_new(claims, AZURE_CLAIM_ISOLATION_TEE, tee);
    }
    json_decref(tee);
    return rc;
}

static enum clst_status
pcr_claims(const struct azure_evidence *ev, json_t *claims)
{
    const struct tpm_pcr_bank *b = &ev->tpm.banks[0];
    json_t *list = json_array(), *bank = json_object(), *pcrs = json_object();
    enum clst_status rc = list != NULL && bank != NULL && pcrs != NULL ? CLST_OK : CLST_E_NOMEM;

    for (unsigned pcr = 0; pcr < TPM_PCR_COUNT && rc == CLST_OK; pcr++) {
        char index[4];
        if ((b->present & (1u << pcr)) == 0) {
            continue;
        }
        snprintf(index, sizeof(index), "%u", pcr);
        if (json_array_append_new(list, json_integer(pcr)) != 0) {
            rc = CLST_E_NOMEM;
            break;
        }
        rc = set_hex(bank, index, b->value[pcr], b->digest_size);
    }
    if (rc == CLST_OK) {
        rc = set_new(pcrs, "sha256", bank);
        bank = NULL;
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, AZURE_CLAIM_X_PCRS, pcrs);
        pcrs = NULL;
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, AZURE_CLAIM_ATTESTED_PCRS, list);
        list = NULL;
    }
    json_decref(list);
    json_decref(bank);
    json_decref(pcrs);
    return rc;
}

static enum clst_status
azure_claims(const void *parsed, json_t *claims, struct clst_err *err)
{
    const struct azure_evidence *ev = parsed;
    const struct azure_result *r = ev->result;
    enum clst_status rc = CLST_OK;
    json_error_t jerr;
    json_t *var = NULL;
    struct clst_buf b64;

    clst_buf_init(&b64, 64);
    if (r == NULL || !r->done) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "azure-vtpm evidence: claims without verification");
        goto out;
    }
    var = json_loadb((const char *)ev->hcl_raw + AZURE_HCL_VAR_OFFSET, ev->hcl.var_size,
                     JSON_REJECT_DUPLICATES, &jerr);
    if (var == NULL) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "azure-vtpm evidence: variable data re-read");
        goto out;
    }
    if (clst_b64_encode(r->ak_spki_sha256, sizeof(r->ak_spki_sha256), &b64) != CLST_OK ||
        clst_buf_terminate(&b64) != CLST_OK) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    rc = set_new(claims, CLST_CLAIM_ATTESTATION_TYPE, json_string(AZURE_ATTESTATION_TYPE));
    const json_t *cfg = json_object_get(var, "vm-configuration");
    const json_t *vmid = json_object_get(cfg, "vmUniqueId");
    const json_t *sb = json_object_get(cfg, "secure-boot");
    if (rc == CLST_OK && json_is_string(vmid)) {
        rc = set_new(claims, AZURE_CLAIM_VMID, json_string(json_string_value(vmid)));
    }
    if (rc == CLST_OK && json_is_boolean(sb)) {
        rc = set_new(claims, AZURE_CLAIM_SECUREBOOT, json_boolean(json_is_true(sb)));
    }
    if (rc == CLST_OK) {
        rc = pcr_claims(ev, claims);
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, AZURE_CLAIM_X_HCL_VERSION, json_integer(ev->hcl.version));
    }
    if (rc == CLST_OK) {
        rc = set_hex(claims, AZURE_CLAIM_X_TPM_NONCE, ev->tpm.attest.extraData.buffer,
                     ev->tpm.attest.extraData.size);
    }
    if (rc == CLST_OK) {
        rc = set_new(claims, AZURE_CLAIM_X_AK_PUB_HASH, json_string((const char *)b64.data));
    }
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "azure-vtpm evidence: cannot build the claim set");
        goto out;
    }
    rc = tee_claims(ev, var, claims, err);
out:
    json_decref(var);
    clst_buf_cleanup(&b64);
    return rc;
}

const struct evidence_ops evidence_azure_ops = {
    .kind = CLST_EVIDENCE_AZURE_VTPM,
    .name = "azure-vtpm",
    .max_size = AZURE_EVIDENCE_MAX_SIZE,
    .parsed_size = sizeof(struct azure_evidence),
    .parse = azure_parse,
    .verify = azure_verify,
    .is_debuggable = azure_is_debuggable,
    .report_data = azure_report_data,
    .claims = azure_claims,
};

/* ---- which hardware is inside (for the service's choice of collateral) ----------------------- */

enum clst_status
clst_evidence_azure_tee_kind(const uint8_t *evidence, size_t size, enum clst_evidence_kind *out,
                             struct clst_err *err)
{
    struct azure_evidence *ev;
    enum clst_status rc;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "azure-vtpm: no output given");
    }
    if (size > AZURE_EVIDENCE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "azure-vtpm evidence is %zu bytes, more than the limit of %u", size,
                            AZURE_EVIDENCE_MAX_SIZE);
    }
    if ((ev = calloc(1, sizeof(*ev))) == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    rc = evidence_azure_parse(evidence, size, ev, err);
    if (rc == CLST_OK) {
        *out =
            ev->hcl.report_type == AZURE_REPORT_TYPE_TDX ? CLST_EVIDENCE_TDX : CLST_EVIDENCE_SEVSNP;
    }
    free(ev);
    return rc;
}
