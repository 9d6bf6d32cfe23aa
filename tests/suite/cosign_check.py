"""Independent checks for the signing tests, with pyca cryptography and PyNaCl.

encrypt-key PLAIN_PEM PASSWORD OUT
    Writes PLAIN_PEM (PKCS#8 P-256) in cosign's encrypted format
    (go-securesystemslib `encrypted`: scrypt + nacl/secretbox), as the legacy
    `ENCRYPTED COSIGN PRIVATE KEY` that skopeo 1.9 reads.

attestations REGISTRY REPO DIGEST PUBLIC_PEM
    Reads REPO's `sha256-<hex>.att` tag from the plain-HTTP REGISTRY, checks
    each DSSE envelope's signature over its PAE with PUBLIC_PEM, and prints
    the verified in-toto statements as a JSON list. Exits 1 if any fails.

signatures REGISTRY REPO DIGEST PUBLIC_PEM
    Reads REPO's `sha256-<hex>.sig` tag the way containers/image's
    sigstoreSigned policy does (OCI manifest; simple-signing layers; base64 DER
    ECDSA signature in `dev.cosignproject.cosign/signature`; a payload with
    exactly critical{type,image,identity} and optional), verifies each with
    PUBLIC_PEM, and prints [{docker_reference, digest, verified}].

sign-sigstore REGISTRY REPO DIGEST IDENTITY PLAIN_PEM
    Signs REPO@DIGEST as IDENTITY the way containers/image's sigstore signer
    does (its payload marshalling, with creator and timestamp) and appends the
    signature to the `.sig` tag as its docker destination does.

validate-cyclonedx FILE
    Validates FILE against the CycloneDX 1.5 JSON schema (strict).
"""
import base64
import hashlib
import json
import os
import sys
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def encrypt_key(plain_pem, password, out):
    key = serialization.load_pem_private_key(open(plain_pem, "rb").read(), password=None)
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    import nacl.secret
    salt = os.urandom(32)
    n, r, p = 32768, 8, 1
    k = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 << 20, dklen=32)
    nonce = os.urandom(24)
    ct = nacl.secret.SecretBox(k).encrypt(der, nonce).ciphertext
    body = json.dumps({
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p},
                "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ct).decode(),
    }).encode()
    b64 = base64.b64encode(body).decode()
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    with open(out, "w") as f:
        f.write("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n" + "\n".join(lines)
                + "\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n")


def get(url, accept=None):
    req = urllib.request.Request(url)
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read()


def pae(payload_type, body):
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def attestations(registry, repo, digest, public_pem):
    pub = serialization.load_pem_public_key(open(public_pem, "rb").read())
    tag = digest.replace(":", "-", 1) + ".att"
    manifest = json.loads(get(f"http://{registry}/v2/{repo}/manifests/{tag}",
                              "application/vnd.oci.image.manifest.v1+json"))
    out = []
    for layer in manifest["layers"]:
        assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json", layer
        blob = get(f"http://{registry}/v2/{repo}/blobs/{layer['digest']}")
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == layer["digest"]
        env = json.loads(blob)
        body = base64.b64decode(env["payload"])
        ok = False
        for s in env["signatures"]:
            try:
                pub.verify(base64.b64decode(s["sig"]), pae(env["payloadType"], body), ec.ECDSA(hashes.SHA256()))
                ok = True
            except InvalidSignature:
                pass
        if not ok:
            print(f"DSSE signature of {layer['digest']} does not verify", file=sys.stderr)
            sys.exit(1)
        statement = json.loads(body)
        assert statement["predicateType"] == layer["annotations"]["predicateType"]
        out.append(statement)
    print(json.dumps(out))


SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIG_ANNOTATION = "dev.cosignproject.cosign/signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def exact(obj, keys):
    assert isinstance(obj, dict) and sorted(obj) == sorted(keys), obj
    return obj


def signatures(registry, repo, digest, public_pem):
    pub = serialization.load_pem_public_key(open(public_pem, "rb").read())
    tag = digest.replace(":", "-", 1) + ".sig"
    req = urllib.request.Request(f"http://{registry}/v2/{repo}/manifests/{tag}")
    req.add_header("Accept", OCI_MANIFEST)
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["Content-Type"] == OCI_MANIFEST, resp.headers["Content-Type"]
        manifest = json.loads(resp.read())
    config = json.loads(get(f"http://{registry}/v2/{repo}/blobs/{manifest['config']['digest']}"))
    assert config["rootfs"]["diff_ids"] == [l["digest"] for l in manifest["layers"]], config
    out = []
    for layer in manifest["layers"]:
        assert layer["mediaType"] == SIMPLE_SIGNING, layer
        payload = get(f"http://{registry}/v2/{repo}/blobs/{layer['digest']}")
        try:
            pub.verify(base64.b64decode(layer["annotations"][SIG_ANNOTATION]), payload, ec.ECDSA(hashes.SHA256()))
            verified = True
        except InvalidSignature:
            verified = False
        doc = exact(json.loads(payload), ["critical", "optional"])
        critical = exact(doc["critical"], ["type", "image", "identity"])
        assert critical["type"] == "cosign container image signature"
        signed = exact(critical["image"], ["docker-manifest-digest"])["docker-manifest-digest"]
        ref = exact(critical["identity"], ["docker-reference"])["docker-reference"]
        out.append({"docker_reference": ref, "digest": signed, "verified": verified})
    print(json.dumps(out))


def put(url, body, content_type):
    req = urllib.request.Request(url, data=body, method="PUT")
    req.add_header("Content-Type", content_type)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


def put_blob(registry, repo, body):
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    req = urllib.request.Request(f"http://{registry}/v2/{repo}/blobs/uploads/", data=b"", method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        location = resp.headers["Location"]
    if location.startswith("/"):
        location = f"http://{registry}{location}"
    sep = "&" if "?" in location else "?"
    put(f"{location}{sep}digest={digest}", body, "application/octet-stream")
    return {"mediaType": None, "digest": digest, "size": len(body)}


def sign_sigstore(registry, repo, digest, identity, plain_pem):
    import time
    key = serialization.load_pem_private_key(open(plain_pem, "rb").read(), password=None)
    # containers/image's UntrustedSigstorePayload.MarshalJSON: json.Marshal of maps (sorted keys, compact).
    payload = json.dumps({
        "critical": {"identity": {"docker-reference": identity},
                     "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": {"creator": "containers/image 5.23.1", "timestamp": int(time.time())},
    }, separators=(",", ":"), sort_keys=True).encode()
    sig = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = put_blob(registry, repo, payload)
    layer["mediaType"] = SIMPLE_SIGNING
    layer["annotations"] = {SIG_ANNOTATION: sig}
    config = json.dumps({"architecture": "", "os": "", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}},
                        separators=(",", ":")).encode()
    cdesc = put_blob(registry, repo, config)
    cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": cdesc, "layers": [layer]},
                          separators=(",", ":")).encode()
    put(f"http://{registry}/v2/{repo}/manifests/{digest.replace(':', '-', 1)}.sig", manifest, OCI_MANIFEST)


def validate_cyclonedx(path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    err = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(path).read())
    if err:
        print(err)
        sys.exit(1)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"encrypt-key": encrypt_key, "attestations": attestations, "signatures": signatures,
     "sign-sigstore": sign_sigstore, "validate-cyclonedx": validate_cyclonedx}[cmd](*args)
