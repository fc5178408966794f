"""Who reaches a self-hosted page: ``python app.py`` listens on 127.0.0.1 alone unless GRADIO_SERVER_NAME says
otherwise (a container, a Space), and asks for a login when FER_AUTH or FER_AUTH_FILE names one (Gradio's auth),
checked with gradio_client. The apps here start without weights (the page that says so), which is quick."""
import pytest

from demo.serve import start_app, stop_app


def listening(port: int) -> set[str]:
    """The addresses of the sockets listening on ``port`` (Linux /proc/net/tcp and tcp6)."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, p = local.split(":")
                if state == "0A" and int(p, 16) == port:  # 0A: LISTEN
                    if width == 8:
                        found.add(".".join(str(b) for b in reversed(bytes.fromhex(addr))))
                    else:
                        found.add("::" if int(addr, 16) == 0 else addr)
    return found


def _start(tmp_path, **env):
    log = open(tmp_path / "app.log", "w+")
    env = {"FER_WEIGHTS_DIR": str(tmp_path / "none"), "FER_WEIGHTS_SOURCE": "local", "HF_HUB_OFFLINE": "1",
           "FER_AUTH": None, "FER_AUTH_FILE": None, **env}
    try:
        return start_app(env, log=log)
    except RuntimeError as e:
        pytest.fail(str(e))


def test_a_plain_start_listens_on_this_machine_alone_and_asks_for_the_login_set(tmp_path):
    from gradio_client import Client

    proc, url = _start(tmp_path, GRADIO_SERVER_NAME=None, FER_AUTH="ada:correct horse")
    try:
        port = int(url.rsplit(":", 1)[1])
        assert listening(port) == {"127.0.0.1"}
        with pytest.raises(Exception):
            Client(url, verbose=False)  # no login: the page's API is closed
        with pytest.raises(Exception):
            Client(url, auth=("ada", "wrong"), verbose=False)
        assert "/predict" in Client(url, auth=("ada", "correct horse"), verbose=False).view_api(
            return_format="dict", print_info=False)["named_endpoints"]
    finally:
        stop_app(proc)


def test_gradio_server_name_opens_it_wider_and_a_login_file_works(tmp_path):
    from gradio_client import Client

    logins = tmp_path / "logins"
    logins.write_text("# who may see the page\nada:first\n\ngrace:second:with a colon\n")
    proc, url = _start(tmp_path, GRADIO_SERVER_NAME="0.0.0.0", FER_AUTH_FILE=str(logins))
    try:
        assert listening(int(url.rsplit(":", 1)[1])) == {"0.0.0.0"}
        Client(url, auth=("grace", "second:with a colon"), verbose=False)
        with pytest.raises(Exception):
            Client(url, verbose=False)
    finally:
        stop_app(proc)


def test_bad_login_settings_are_refused_by_name(tmp_path, monkeypatch):
    from demo.access import launch_settings, parse_logins

    assert parse_logins("ada:x\n# c\n\n", "s") == [("ada", "x")]
    for bad in ("ada", ":x", "ada:"):
        with pytest.raises(ValueError, match="FER_AUTH, line 1: expected user:password"):
            parse_logins(bad, "FER_AUTH")
    monkeypatch.delenv("FER_AUTH", raising=False)
    monkeypatch.delenv("FER_AUTH_FILE", raising=False)
    assert launch_settings() == {}
    empty = tmp_path / "empty"
    empty.write_text("# nobody\n")
    monkeypatch.setenv("FER_AUTH_FILE", str(empty))
    with pytest.raises(ValueError, match="no user:password line"):
        launch_settings()
