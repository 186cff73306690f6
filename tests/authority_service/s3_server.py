"""A throwaway S3-compatible server for the clip store tests: moto's standalone server
(``python -m moto.server``, from ``moto[server]`` of the ``dev`` extra) in its own process on
127.0.0.1 and a random free port, with request authentication on, stopped at the end.

Why moto and not MinIO (what compose runs, deploy/README.md): only PyPI, Debian and npm can be
reached from the machines that build and test this project, and none of them has a practical
real S3 server. MinIO ships from its own site and Docker Hub only; Debian 12's ``radosgw`` (Ceph
16) serves S3 only in front of a running RADOS cluster (monitors and OSDs); npm's ``s3rver`` is
an emulator too, unmaintained since 2021, and would bring a Node.js install into CI; LocalStack
needs Docker. moto's server is a separate process that speaks S3's REST protocol over HTTP as
boto3 sees it from any store: SigV4-signed requests, multipart uploads, ``NoSuchBucket`` /
``NoSuchKey`` / 404, and, with ``INITIAL_NO_AUTH_ACTION_COUNT``, ``InvalidAccessKeyId`` and
``SignatureDoesNotMatch`` (403) for credentials it did not issue.

Authentication: the first :data:`_SETUP_ACTIONS` requests are let through unauthenticated; they
create an IAM user with an ``s3:*`` policy and its access key (:attr:`S3Server.access_key_id`,
:attr:`S3Server.secret`). Every later request must be signed with that key.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Set (CI: .ci/run) to fail rather than skip where moto's server is not installed.
REQUIRE_ENV_VAR = "UUNET_REQUIRE_S3"
REGION = "us-east-1"
_SETUP_ACTIONS = 3  # create_user, create_access_key, put_user_policy


def moto_server_available() -> bool:
    """Whether ``moto[server]`` and boto3 are installed."""
    try:
        import boto3  # noqa: F401
        import flask  # noqa: F401  (what moto's server runs on)
        import moto.server  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass
class S3Server:
    """A running server: where it listens, and the one key it accepts."""

    port: int
    process: subprocess.Popen
    access_key_id: str
    secret: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, access_key_id: str | None = None, secret: str | None = None) -> Any:
        """A boto3 S3 client of this server (its own key unless others are given)."""
        return _client(self.url, access_key_id or self.access_key_id, secret or self.secret)

    def new_bucket(self) -> str:
        """Create an empty bucket with a fresh name; return the name."""
        name = f"uunet-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        """Every key in ``bucket``, sorted."""
        listed = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))


def _client(url: str, access_key_id: str, secret: str, service: str = "s3") -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


@contextlib.contextmanager
def running_server(port: int) -> Iterator[S3Server]:
    """Start moto's server on ``port``, wait until it answers, and create its one user.

    Raises:
        RuntimeError: it exited or did not answer within 30 s (its output in the error).
    """
    log = Path(tempfile.mkstemp(prefix="uunet-moto-", suffix=".log")[1])
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_SETUP_ACTIONS)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(urllib.error.URLError, ConnectionError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2).close()
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto's server did not start: {log.read_text()}")
            time.sleep(0.05)
        iam = _client(f"http://127.0.0.1:{port}", "setup", "setup", "iam")
        iam.create_user(UserName="uunet")
        key = iam.create_access_key(UserName="uunet")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*",
                                                          "Resource": "*"}]}  # fmt: skip
        iam.put_user_policy(UserName="uunet", PolicyName="s3", PolicyDocument=json.dumps(policy))
        yield S3Server(port, process, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.unlink(missing_ok=True)
