"""One certificate from an ACME authority with certbot's `acme` library (the protocol is
the library's; this is only the order: account, HTTP-01 or TLS-ALPN-01 answers, finalize)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.b64 import b64encode
from josepy.jwk import JWKRSA

from berth.acme import alpn
from berth.acme.challenge import Tokens

USER_AGENT = "berth-acme"
ORDER_SECONDS = 120  # validation and finalization together


class IssueError(Exception):
    """A certificate could not be had; the message says why, for the log and `berth status`."""


@dataclass(frozen=True)
class Issued:
    fullchain_pem: bytes
    key_pem: bytes


# Writes one file of the account's state (mode 600, written aside and renamed).
WriteFile = Callable[[Path, bytes], None]


@dataclass(frozen=True)
class Answers:
    """Where the running order's answers go: HTTP-01 tokens for the HTTP port, or TLS-ALPN-01
    certificates for the proxy's HTTPS port."""

    challenge: str  # "http-01" or "tls-alpn-01"
    tokens: Tokens
    certificates: alpn.Certificates

    def clear(self) -> None:
        self.tokens.clear()
        self.certificates.clear()


def key_authorization(token: str, jwk: JWKRSA) -> str:
    """RFC 8555 8.1: the token and the account key's thumbprint."""
    thumbprint = b64encode(jwk.public_key().thumbprint(hash_function=hashes.SHA256))
    return f"{token}.{thumbprint.decode()}"


def challenge_type(chall: challenges.Challenge) -> str:
    """A challenge's type, also for those the library does not know (tls-alpn-01 now)."""
    typ = getattr(chall, "typ", None)
    return typ if isinstance(typ, str) else str(chall.to_partial_json().get("type", "?"))


def _answer(
    acme: client.ClientV2, authz: messages.AuthorizationResource, jwk: JWKRSA, answers: Answers
) -> None:
    """Put the answer for one name where the authority will look, then tell it to look."""
    name = authz.body.identifier.value
    found = [c for c in authz.body.challenges if challenge_type(c.chall) == answers.challenge]
    if not found:
        offered = ", ".join(sorted({challenge_type(c.chall) for c in authz.body.challenges}))
        raise IssueError(f"{name}: the authority offers no {answers.challenge} (only {offered})")
    challb = found[0]
    if isinstance(challb.chall, challenges.HTTP01):
        response, validation = challb.response_and_validation(jwk)
        answers.tokens.put(challb.chall.encode("token"), validation)
    else:  # tls-alpn-01: the acme library no longer builds it; RFC 8737 is one certificate
        token = challb.chall.to_partial_json().get("token", "")
        authorization = key_authorization(str(token), jwk)
        answers.certificates.put(name, authorization)
        response = challenges.KeyAuthorizationChallengeResponse(key_authorization=authorization)
    acme.answer_challenge(challb, response)


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def account_key(path: Path, write: WriteFile) -> JWKRSA:
    """The account's key, made once and kept (mode 600) beside the account's URL."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write(path, _private_pem(key))
    return JWKRSA(key=key)


def _register(acme: client.ClientV2, email: str) -> None:
    """The account of this key: made on the first order, found again on later ones (also
    after the authority lost it, or with another directory: staging's account is not
    production's)."""
    new = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
    try:
        acme.new_account(new)
    except errors.ConflictError as exc:  # the key has an account there already
        acme.query_registration(
            messages.RegistrationResource(uri=exc.location, body=messages.Registration())
        )


def describe(exc: BaseException, directory: str) -> str:
    """One line for the operator: what failed, with the authority's own words."""
    if isinstance(exc, errors.ValidationError):
        parts = []
        for authz in exc.failed_authzrs:
            for chall in authz.body.challenges:
                if chall.error is not None:
                    detail = chall.error.detail or chall.error.description or chall.error.typ
                    typ = challenge_type(chall.chall)
                    parts.append(f"{authz.body.identifier.value}: {typ} {detail}")
        return "the challenge failed: " + ("; ".join(parts) or "the authority gave no reason")
    if isinstance(exc, messages.Error):
        return f"the authority refused: {exc.detail or exc.description or exc.typ}"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"cannot verify the HTTPS certificate of {directory} (tls.acme.directory_ca?)"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"cannot reach {directory}: {type(exc).__name__}"
    if isinstance(exc, errors.TimeoutError):
        return f"the authority did not finish the order within {ORDER_SECONDS}s"
    return f"{type(exc).__name__}: {exc}"


def obtain(
    directory: str,
    email: str,
    names: list[str],
    state: Path,
    answers: Answers,
    verify: bool | str,
    write: WriteFile,
) -> Issued:
    """Register (once), order a certificate for `names`, answer its challenges through
    `answers`, and return the chain with a new P-256 key. Raises IssueError with the reason."""
    try:
        jwk = account_key(state / "account-key.pem", write)
        net = client.ClientNetwork(jwk, user_agent=USER_AGENT, verify_ssl=verify)  # type: ignore[arg-type]
        acme = client.ClientV2(client.ClientV2.get_directory(directory, net), net=net)
        _register(acme, email)
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = _private_pem(key)
        order = acme.new_order(crypto_util.make_csr(key_pem, names))
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue  # the authority remembers a recent validation
            _answer(acme, authz, jwk, answers)
        deadline = dt.datetime.now() + dt.timedelta(seconds=ORDER_SECONDS)
        order = acme.poll_and_finalize(order, deadline=deadline)
        return Issued(order.fullchain_pem.encode(), key_pem)
    except IssueError:
        raise
    except Exception as exc:  # every failure becomes a reason on one line, never a crash
        raise IssueError(describe(exc, directory)) from exc
    finally:
        answers.clear()
