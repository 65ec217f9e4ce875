"""What a secured local cluster needs: a certificate authority, the broker's keystore, SCRAM
users and ready-to-use client settings. Stdlib only, like the local broker it serves.

The certificates come from the JDK's `keytool` (the broker needs a JDK anyway), never from
code of ours: a CA key pair, a broker key pair signed by it for the loopback names, a PKCS12
keystore for the JVM, and the CA certificate in PEM that the brokers and every client trust.
Passwords are random (`secrets`) and stay in files only the owner may read.

Layout under the cluster's home::

    tls/ca.p12 ca.pem broker.p12 broker.pem
    credentials.json         keystore password and every user's password (mode 600)
    <user>.env               CLAIMS_* settings for that user (mode 600)
    <user>.properties        the same for Kafka's own tools (--command-config)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from stream.kafka.local.jvmtools import run_together

__all__ = [
    "BROKER_USER",
    "CLIENT_USERS",
    "MECHANISM",
    "ClientFiles",
    "Credentials",
    "TlsFiles",
    "client_env",
    "client_properties",
    "ensure_tls",
    "scram_credential",
    "write_client_files",
]

MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 4096  # Kafka's minimum for SCRAM-SHA-512
BROKER_USER = "broker"
"""The brokers' own SCRAM user on the inter-broker (client) listener: a super user."""
CLIENT_USERS = ("stage", "producer", "admin")
"""The stage reads its input and writes its outputs; the producer writes the input; the
admin creates topics and grants ACLs (a super user)."""
BROKER_CN = "claims-stage-broker"
"""The broker certificate's subject: `User:CN=claims-stage-broker` on the controller listener."""
CERT_DAYS = 825
CA_DAYS = 3650
KEYTOOL_TIMEOUT = 60.0


class SecurityError(RuntimeError):
    """The secured cluster's certificates or credentials could not be made."""


def _private_write(path: Path, text: str) -> None:
    """Write a file only its owner can read (created so, never world-readable for a moment)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_CREAT


@dataclass(frozen=True)
class Credentials:
    """The keystore password and each user's password, made once per cluster."""

    store_password: str
    passwords: dict[str, str]

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            document = json.loads(path.read_text())
            credentials = cls(str(document["store_password"]), dict(document["passwords"]))
            if set(credentials.passwords) >= {BROKER_USER, *CLIENT_USERS}:
                return credentials
        credentials = cls(
            secrets.token_urlsafe(24),
            {user: secrets.token_urlsafe(24) for user in (BROKER_USER, *CLIENT_USERS)},
        )
        _private_write(
            path,
            json.dumps(
                {"store_password": credentials.store_password, "passwords": credentials.passwords},
                indent=2,
            )
            + "\n",
        )
        return credentials


def scram_credential(user: str, password: str, salt: bytes | None = None) -> str:
    """The storage tool's `--add-scram` argument for one user, with the salted password
    (SCRAM's `Hi()` is PBKDF2-HMAC), so that no password shows on a command line."""
    salt = salt if salt is not None else secrets.token_bytes(32)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, SCRAM_ITERATIONS)
    encoded_salt = base64.b64encode(salt).decode()
    encoded_salted = base64.b64encode(salted).decode()
    return (
        f"{MECHANISM}=[name={user},iterations={SCRAM_ITERATIONS},"
        f'salt="{encoded_salt}",saltedpassword="{encoded_salted}"]'
    )


@dataclass(frozen=True)
class TlsFiles:
    ca_pem: Path  # the CA's certificate: what clients, and the brokers themselves, trust
    keystore: Path  # the broker's key and certificate chain, PKCS12


def _subject_alternative_names(host: str) -> str:
    names = {"dns:localhost", "ip:127.0.0.1"}
    try:
        ipaddress.ip_address(host)
        names.add(f"ip:{host}")
    except ValueError:
        names.add(f"dns:{host}")
    return ",".join(sorted(names))


def _keytool(keytool: str, *steps: list[str]) -> None:
    """Run keytool once per step, the steps at the same time (each is a JVM start)."""
    failures = run_together(
        [(f"keytool {step[0]}", [keytool, *step]) for step in steps], KEYTOOL_TIMEOUT
    )
    if failures:
        raise SecurityError("\n".join(failures))


def ensure_tls(tls_dir: Path, host: str, keytool: str, store_password: str) -> TlsFiles:
    """A CA and a broker keystore signed by it, made with keytool unless already there."""
    files = TlsFiles(tls_dir / "ca.pem", tls_dir / "broker.p12")
    if files.ca_pem.is_file() and files.keystore.is_file():
        return files
    tls_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(tls_dir, 0o700)
    for stale in tls_dir.iterdir():
        stale.unlink()
    ca_store, request = str(tls_dir / "ca.p12"), str(tls_dir / "broker.csr")
    signed, chain = tls_dir / "broker.pem", tls_dir / "broker-chain.pem"
    store = ["-storetype", "PKCS12", "-storepass", store_password]
    key = ["-keyalg", "EC", "-groupname", "secp256r1"]
    # fmt: off
    _keytool(
        keytool,
        # The CA: a self-signed certificate allowed to sign (critical basic constraints and
        # key usage, as strict verifiers want).
        ["-genkeypair", "-alias", "ca", *key, "-dname", "CN=claims-stage local CA",
         "-ext", "bc:c=ca:true", "-ext", "ku:c=keyCertSign,cRLSign",
         "-validity", str(CA_DAYS), "-keystore", ca_store, *store],
        # The broker's key pair (one certificate serves every node: all listen on this host).
        ["-genkeypair", "-alias", "broker", *key, "-dname", f"CN={BROKER_CN}",
         "-validity", str(CERT_DAYS), "-keystore", str(files.keystore), *store],
    )
    _keytool(
        keytool,
        ["-exportcert", "-rfc", "-alias", "ca", "-keystore", ca_store, *store,
         "-file", str(files.ca_pem)],
        ["-certreq", "-alias", "broker", "-keystore", str(files.keystore), *store,
         "-file", request],
    )
    # The CA signs the broker for the loopback names, as a server and as a client (the
    # controllers ask each other for certificates).
    _keytool(
        keytool,
        ["-gencert", "-alias", "ca", "-keystore", ca_store, *store, "-infile", request,
         "-outfile", str(signed), "-rfc", "-validity", str(CERT_DAYS),
         "-ext", f"san={_subject_alternative_names(host)}",
         "-ext", "ku:c=digitalSignature,keyAgreement", "-ext", "eku=serverAuth,clientAuth"],
    )
    chain.write_text(signed.read_text() + files.ca_pem.read_text())
    _keytool(
        keytool,
        ["-importcert", "-alias", "broker", "-file", str(chain),
         "-keystore", str(files.keystore), *store, "-noprompt"],
    )
    # fmt: on
    for path in (Path(request), chain):
        path.unlink()
    for path in tls_dir.iterdir():
        os.chmod(path, 0o600 if path.suffix == ".p12" else 0o644)
    return files


@dataclass(frozen=True)
class ClientFiles:
    user: str
    env: Path
    properties: Path


def client_env(user: str, password: str, bootstrap: str, ca_pem: Path) -> str:
    """`CLAIMS_*` settings for one user: `set -a; . stage.env; set +a`, or `docker --env-file`."""
    return (
        f"# claims-stage on the local secured cluster as {user!r}. In a shell:\n"
        f"#   set -a; . {ca_pem.parent.parent / f'{user}.env'}; set +a\n"
        f"CLAIMS_KAFKA_BOOTSTRAP={bootstrap}\n"
        "CLAIMS_SECURITY_PROTOCOL=SASL_SSL\n"
        f"CLAIMS_SASL_MECHANISM={MECHANISM}\n"
        f"CLAIMS_SASL_USERNAME={user}\n"
        f"CLAIMS_SASL_PASSWORD={password}\n"
        f"CLAIMS_SSL_CAFILE={ca_pem}\n"
    )


def client_properties(user: str, password: str, bootstrap: str, ca_pem: Path) -> str:
    """The same for Kafka's Java tools (`--command-config`, `--consumer.config`)."""
    return (
        f"# Kafka client settings for {user!r} on the local secured cluster.\n"
        f"bootstrap.servers={bootstrap}\n"
        "security.protocol=SASL_SSL\n"
        f"sasl.mechanism={MECHANISM}\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";\n'
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={ca_pem}\n"
    )


def write_client_files(
    home: Path, credentials: Credentials, bootstrap: str, ca_pem: Path
) -> list[ClientFiles]:
    written = []
    for user in CLIENT_USERS:
        password = credentials.passwords[user]
        files = ClientFiles(user, home / f"{user}.env", home / f"{user}.properties")
        _private_write(files.env, client_env(user, password, bootstrap, ca_pem))
        _private_write(files.properties, client_properties(user, password, bootstrap, ca_pem))
        written.append(files)
    return written
