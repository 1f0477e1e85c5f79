"""berth up's plan of berth-acme (tls.acme): its container, network and volume, its challenge
and directory, and what its settings restart."""

from test_deploy_plan import SECURITY, fingerprints, healthcheck, plan, without_labels

from berth.deploy.containerplan import HostFacts

ACME = {"tls": {"acme": {"email": "ops@example.org", "hostnames": ["hub.example.org"]}}}


def test_acme_runs_in_its_own_container_without_engine_or_berth_network():
    deployment = plan({**ACME, "listen": {"address": "0.0.0.0", "port": 443}})
    assert deployment.acme is not None
    assert without_labels(deployment.acme.create_kwargs) == {
        "image": "sha256:abc",
        "name": "berth-acme",
        "hostname": "berth-acme",
        "command": [
            "python3",
            "-m",
            "berth.acme.service",
            "--directory",
            "https://acme-v02.api.letsencrypt.org/directory",
            "--email",
            "ops@example.org",
            "--http-port",
            "8080",
            "--challenge",
            "http-01",
            "--https-port",
            "443",
            "--tls-dir",
            "/srv/berth/proxy/tls",
            "--state",
            "/srv/berth/acme",
            "--name",
            "hub.example.org",
        ],
        "detach": True,
        "environment": {},
        "ports": {"8080/tcp": ("0.0.0.0", 80)},
        # The proxy volume to write the certificate, its own for the account key: no socket,
        # no guard, no hub data.
        "volumes": {
            "berth-hub-data-proxy": {"bind": "/srv/berth/proxy", "mode": "rw"},
            "berth-hub-data-acme": {"bind": "/srv/berth/acme", "mode": "rw"},
        },
        "network": "berth-acme",
        "read_only": True,
        "healthcheck": healthcheck("acme"),
        **SECURITY,
    }
    assert deployment.acme_network == {
        "name": "berth-acme",
        "driver": "bridge",
        "labels": {"berth.deploy.role": "acme"},
    }
    assert deployment.volumes["berth-hub-data-acme"] == {"berth.role": "acme-data"}
    assert [c.role for c in deployment.containers] == ["guard", "firewall", "hub", "proxy", "acme"]
    # The self-signed stand-in covers the ACME names too; the hub keeps ACME's certificate.
    assert deployment.hub.create_kwargs["environment"] == {
        "BERTH_TLS_SELF_SIGNED": "hub.example.org,vm,127.0.0.1",
        "BERTH_TLS_ACME": "1",
        "DOCKER_HOST": "unix:///run/berth-engine/docker.sock",
    }


def test_with_port_80_closed_nothing_is_published_and_tls_alpn_01_is_answered():
    closed = {"tls": {"acme": {**ACME["tls"]["acme"], "http_port": 0}}}
    kwargs = plan(closed).acme.create_kwargs
    assert kwargs["ports"] == {}
    assert kwargs["command"][kwargs["command"].index("--challenge") + 1] == "tls-alpn-01"
    # Chosen explicitly, the HTTP port still redirects to HTTPS.
    chosen = {"tls": {"acme": {**ACME["tls"]["acme"], "challenge": "tls-alpn-01"}}}
    kwargs = plan(chosen).acme.create_kwargs
    assert kwargs["ports"] == {"8080/tcp": ("0.0.0.0", 80)}
    assert kwargs["command"][kwargs["command"].index("--challenge") + 1] == "tls-alpn-01"


def test_without_acme_nothing_of_it_is_planned_and_nothing_else_changes():
    deployment = plan()
    assert deployment.acme is None and deployment.acme_network is None
    assert "berth-hub-data-acme" not in deployment.volumes
    assert "BERTH_TLS_ACME" not in deployment.hub.create_kwargs["environment"]


def test_staging_and_a_test_ca_for_the_directory():
    staging = {"tls": {"acme": {**ACME["tls"]["acme"], "staging": True}}}
    command = plan(staging).acme.create_kwargs["command"]
    assert command[command.index("--directory") + 1] == (
        "https://acme-staging-v02.api.letsencrypt.org/directory"
    )
    facts = HostFacts("sha256:abc", 998, ["vm"], acme_directory_ca=b"-----BEGIN CERTIFICATE-----")
    environment = plan(ACME, facts).acme.create_kwargs["environment"]
    assert environment == {"BERTH_ACME_DIRECTORY_CA": "-----BEGIN CERTIFICATE-----"}


def test_acme_settings_restart_only_berth_acme_and_renewals_restart_nothing():
    base = fingerprints(ACME)
    other = {"tls": {"acme": {**ACME["tls"]["acme"], "email": "new@example.org"}}}
    assert {r for r, f in fingerprints(other).items() if base[r] != f} == {"acme"}
    # The proxy reloads the certificate berth-acme renews: its inputs do not name it.
    names = {"tls": {"acme": {**ACME["tls"]["acme"], "hostnames": ["other.example.org"]}}}
    assert fingerprints(names)["proxy"] == base["proxy"]
