"""berth/auth/nostatsd.py: the calls NativeAuthenticator 1.3's login page makes on the hub's
statsd client work on JupyterHub 6, which has none; JupyterHub 5's client is used when there."""

from berth.auth.nostatsd import NullStatsd, statsd_of


def test_the_login_pages_calls_do_nothing_without_a_client():
    statsd = statsd_of({})  # JupyterHub 6's settings: no "statsd"
    assert isinstance(statsd, NullStatsd)
    timer = statsd.timer("login.authenticate").start()  # as NativeAuthenticator times a login
    assert timer.stop(send=False) is timer and timer.ms == 0.0
    assert (statsd.incr("login.success"), statsd.timing("login", 3.0)) == (None, None)


def test_the_hubs_own_client_when_it_has_one():
    client = object()
    assert statsd_of({"statsd": client}) is client
