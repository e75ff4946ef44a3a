"""``collector export`` from InfluxDB: its TLS settings, and errors that never show secrets."""

from __future__ import annotations

import io
import json
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.config import Config, InfluxConfig, StoreConfig
from collector.errors import ConfigError, StoreUnavailable
from collector.logs import safe_url
from collector.outputs.export import export_measurement, rows, write_csv
from tests.cli.test_cli import run
from tests.fake_influx2 import answering_flux
from tests.needs import tool

ANSWER = {"results": [{"series": [{
    "name": "power_w",
    "columns": ["time", "device", "device_id", "site", "source", "value"],
    "values": [[1772323200000000000, "Plug", "0815", "home", "fritzbox", 12.5],
               [1772323210000000000, "Plug", "0815", "home", "fritzbox", 13.0]],
}]}]}


class _Query(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps(ANSWER).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = tool("openssl", "apt-get install openssl; `make openssl` does")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "influx.pem", d / "influx.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=influx.lan", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@pytest.fixture
def https_influx(certificate: tuple[Path, Path]) -> Iterator[str]:
    """An InfluxDB 1.x query endpoint on loopback with a self-signed certificate."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Query)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def v1(url: str, **tls: object) -> Config:
    influx = InfluxConfig(url=url, api="v1", database="energy", username="reader",
                          password=SecretStr("pa55word"), timeout=5.0, **tls)  # type: ignore[arg-type]
    return Config(store=StoreConfig(kind="influxdb"), influxdb=influx)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def exported(config: Config) -> str:
    out = io.StringIO()
    write_csv("power_w", rows(config, "power_w"), out)
    return out.getvalue()


def test_export_trusts_the_ca_file(https_influx: str, certificate: tuple[Path, Path]) -> None:
    assert exported(v1(https_influx, ca_file=certificate[0])).splitlines() == [
        "time,measurement,source,site,device_id,device,room,model,scope,other_tags,value,unit,"
        "label",
        "2026-03-01T00:00:00Z,power_w,fritzbox,home,0815,Plug,,,,,12.5,W,",
        "2026-03-01T00:00:10Z,power_w,fritzbox,home,0815,Plug,,,,,13.0,W,",
    ]


def test_export_honours_verify_tls_false(https_influx: str) -> None:
    assert len(exported(v1(https_influx, verify_tls=False)).splitlines()) == 3


def test_export_refuses_an_untrusted_certificate(https_influx: str) -> None:
    with pytest.raises(StoreUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        exported(v1(https_influx))


def test_a_missing_ca_file_is_a_config_error(https_influx: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"influxdb\.ca_file: cannot load"):
        exported(v1(https_influx, ca_file=tmp_path / "missing.pem"))


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_export_errors_never_show_credentials(api: str, tmp_path: Path) -> None:
    port = closed_port()
    cfg = tmp_path / "collector.toml"
    cfg.write_text(f"""
[store]
kind = "influxdb"
[influxdb]
api = "{api}"
url = "http://reader:pa55word@127.0.0.1:{port}"
database = "energy"
org = "home"
bucket = "energy"
token = "t0ken-s3cret"
timeout = "2s"
""")
    result = run(["export", "--config", str(cfg), "--measurement", "power_w"], tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: InfluxDB at http://127.0.0.1:{port}: ")
    assert "Traceback" not in result.stderr
    for secret in ("pa55word", "t0ken-s3cret"):
        assert secret not in result.stdout + result.stderr


def test_export_to_a_file_through_the_api(https_influx: str, certificate: tuple[Path, Path],
                                          tmp_path: Path) -> None:
    out = tmp_path / "power.csv"
    n = export_measurement(v1(https_influx, ca_file=certificate[0]), "power_w", start="2026-03-01",
                           end=None, device="0815", out=out)
    assert n == 2 and out.read_text().count("\n") == 3


@pytest.mark.parametrize(("url", "shown"), [
    ("https://reader:pa55@influx.lan:8086/base?u=reader&p=pw", "https://influx.lan:8086/base?u=***&p=***"),
    ("http://influx.lan:8086", "http://influx.lan:8086"),
    ("http://token@influx.lan/", "http://influx.lan/"),
])
def test_safe_url(url: str, shown: str) -> None:
    assert safe_url(url) == shown


FLUX_ANSWER = """#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,\
string,string,string,string,string,double,string
#group,false,false,true,true,false,true,true,true,true,true,false,false
#default,_result,,,,,,,,,,,
,result,table,_start,_stop,_time,_measurement,device,device_id,site,room,value,label
,,0,1970-01-01T00:00:00Z,2026-03-02T00:00:00Z,2026-03-01T00:00:00.5Z,power_w,Plug,0815,home,Kitchen,12.5,
,,0,1970-01-01T00:00:00Z,2026-03-02T00:00:00Z,2026-03-01T00:00:10Z,power_w,Plug,0815,home,,13,
,,0,1970-01-01T00:00:00Z,2026-03-02T00:00:00Z,2026-03-01T00:00:20Z,power_w,Plug,0815,home,,14,

"""


def test_export_from_influxdb_2_asks_flux_with_the_filters() -> None:
    with answering_flux(FLUX_ANSWER) as (url, queries):
        config = Config(store=StoreConfig(kind="influxdb"), influxdb=InfluxConfig(
            url=url, api="v2", org="home", bucket="energy", token=SecretStr("t0ken"),
            timeout=5.0))
        got = list(rows(config, "power_w", device='Plug "1"', site="home",
                        end=1772323215_500000000))
    (flux,) = queries
    assert 'from(bucket: "energy") |> range(start: 0, stop: 1772323216)' in flux
    assert ('r._measurement == "power_w" and (r.device == "Plug \\"1\\"" or r.device_id == '
            '"Plug \\"1\\"") and r.site == "home"') in flux
    assert '|> group() |> sort(columns: ["_time"])' in flux
    # the exact end is kept (the range is in whole seconds); empty tags are no tags
    assert got == [
        (1772323200_500000000, {"device": "Plug", "device_id": "0815", "site": "home",
                                "room": "Kitchen"}, 12.5, None),
        (1772323210_000000000, {"device": "Plug", "device_id": "0815", "site": "home"}, 13.0,
         None),
    ]
