#!/usr/bin/env python3
"""Builds the Cloister TPM evidence containers (docs/evidence-tpm.md) in containers/ from the
go-tpm-tools GCE files in go-tpm-tools-gce/extracted/ (lossless: every TPM byte is the upstream
byte, only wrapped in base64 and JSON). Run from anywhere; rewrites containers/*.json."""
import base64
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "go-tpm-tools-gce")
EX = os.path.join(SRC, "extracted")
OUT = os.path.join(HERE, "containers")
SIZES = {"sha1": 20, "sha256": 32, "sha384": 48}


def read(*parts):
    with open(os.path.join(*parts), "rb") as f:
        return f.read()


def b64(data):
    return base64.b64encode(data).decode("ascii")


def container(name, bank, with_log):
    concat = read(EX, f"{name}.quote-{bank}.pcrs-concat.bin")
    size = SIZES[bank]
    assert len(concat) == 24 * size
    pcrs = {str(i): concat[i * size:(i + 1) * size].hex() for i in range(24)}
    doc = {
        "version": 1,
        "quote": b64(read(EX, f"{name}.quote-{bank}.tpms_attest.bin")),
        "signature": b64(read(EX, f"{name}.quote-{bank}.tpmt_signature.bin")),
        "pcrs": {bank: pcrs},
        # The AK is the same in both upstream files (their README: identical ak_pub and cert).
        "ak_public": b64(read(EX, "nonce9009.ak-pub.tpmt_public.bin")),
        "ak_cert": b64(read(EX, "nonce9009.ak-cert.der")),
        "ak_chain": [b64(read(SRC, "tpm_ek_intermediate_2.crt"))],
    }
    if with_log:
        doc["event_log"] = b64(read(EX, "nonce9009.event-log.bin"))
    return doc


def main():
    os.makedirs(OUT, exist_ok=True)
    for name in ("nonce9009", "no-nonce"):
        for bank in SIZES:
            for with_log in (True, False):
                doc = container(name, bank, with_log)
                suffix = "" if with_log else "-nolog"
                path = os.path.join(OUT, f"gce-{name}-{bank}{suffix}.json")
                with open(path, "w") as f:
                    json.dump(doc, f, indent=1)
                    f.write("\n")


if __name__ == "__main__":
    main()
