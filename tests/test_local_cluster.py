"""The local cluster's configuration, shape and credentials, without starting a JVM."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from stream.cli.main import app
from stream.kafka.local import security
from stream.kafka.local.cluster import BrokerError, LocalBroker, LocalCluster
from stream.kafka.local.security import Credentials, TlsFiles
from stream.kafka.replication import default_replication
from tests.reference import StageRunner
from tests.stage_kafka import free_ports

runner = StageRunner()


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def test_three_nodes_default_to_ports_9092_9094_9096(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, nodes=3)
    assert [n.port for n in cluster.nodes] == [9092, 9094, 9096]
    assert [n.controller_port for n in cluster.nodes] == [9193, 9195, 9197]
    assert cluster.bootstrap == "127.0.0.1:9092,127.0.0.1:9094,127.0.0.1:9096"
    assert [n.home for n in cluster.nodes] == [tmp_path / f"node-{i}" for i in (1, 2, 3)]
    # One node keeps the layout of the single local broker: its files in the home itself.
    single = LocalBroker(tmp_path / "single")
    assert single.cluster.nodes[0].home == single.home
    assert single.bootstrap == "127.0.0.1:9092"


def test_each_node_is_a_voter_and_topics_get_three_replicas_two_in_sync(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, nodes=3, ports=[1000, 1002, 1004])
    config = _properties(cluster.render_config(cluster.nodes[1], None, None))
    assert config["node.id"] == "2"
    assert config["process.roles"] == "broker,controller"
    assert config["controller.quorum.voters"] == (
        "1@127.0.0.1:1101,2@127.0.0.1:1103,3@127.0.0.1:1105"
    )
    assert config["listeners"] == "CLIENT://127.0.0.1:1002,CONTROLLER://127.0.0.1:1103"
    assert config["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,CLIENT:PLAINTEXT"
    assert config["log.dirs"] == str(tmp_path / "node-2" / "data")
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
    ):
        assert config[key] == "3"
    assert config["min.insync.replicas"] == config["transaction.state.log.min.isr"] == "2"
    single = _properties(LocalCluster(tmp_path / "one").render_config(
        LocalCluster(tmp_path / "one").nodes[0], None, None
    ))  # fmt: skip
    assert single["default.replication.factor"] == single["min.insync.replicas"] == "1"


def test_a_secured_node_serves_sasl_ssl_only_with_the_standard_authorizer(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, nodes=3, secure=True)
    tls = TlsFiles(tmp_path / "ca.pem", tmp_path / "broker.p12")
    credentials = Credentials("store-secret", {"broker": "broker-secret"})
    config = _properties(cluster.render_config(cluster.nodes[0], tls, credentials))
    assert config["listener.security.protocol.map"] == "CONTROLLER:SSL,CLIENT:SASL_SSL"
    assert config["inter.broker.listener.name"] == "CLIENT"
    assert config["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert config["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert (
        'username="broker" password="broker-secret"'
        in (config["listener.name.client.scram-sha-512.sasl.jaas.config"])
    )
    assert config["listener.name.controller.ssl.client.auth"] == "required"
    assert config["ssl.keystore.location"] == str(tls.keystore)
    assert (config["ssl.truststore.type"], config["ssl.truststore.location"]) == (
        "PEM",
        str(tls.ca_pem),
    )
    assert config["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert config["allow.everyone.if.no.acl.found"] == "false"
    assert config["super.users"].split(";") == [
        "User:CN=claims-stage-broker",
        "User:broker",
        "User:admin",
    ]
    # Nothing listens in plaintext.
    assert "PLAINTEXT" not in config["listener.security.protocol.map"]


def test_the_recorded_shape_is_kept_and_a_change_needs_a_reset(tmp_path: Path) -> None:
    ports = free_ports(6)
    shape = {
        "nodes": 3,
        "secure": False,
        "host": "127.0.0.1",
        "ports": ports[:3],
        "controller_ports": ports[3:],
    }
    (tmp_path / "cluster.json").write_text(json.dumps(shape))
    for node in (1, 2, 3):
        (tmp_path / f"node-{node}" / "data").mkdir(parents=True)
        (tmp_path / f"node-{node}" / "data" / "meta.properties").write_text("formatted\n")
    recorded = LocalCluster(tmp_path)  # no --nodes: the shape it was formatted with
    assert [n.port for n in recorded.nodes] == ports[:3]
    assert [n.controller_port for n in recorded.nodes] == ports[3:]
    assert [s.running for s in recorded.status()] == [False, False, False]

    other = LocalCluster(tmp_path, nodes=3, secure=True, ports=ports[:3])
    with pytest.raises(BrokerError, match="holds a 3-node plaintext cluster, not a 3-node secured"):
        other.start(timeout=1)

    deleted = recorded.reset()
    assert tmp_path / "node-2" in deleted
    assert not (tmp_path / "cluster.json").exists()
    assert LocalCluster(tmp_path).recorded_shape() is None


def test_credentials_and_client_files_are_for_the_owner_only(tmp_path: Path) -> None:
    credentials = Credentials.load_or_create(tmp_path / "credentials.json")
    assert set(credentials.passwords) == {"broker", "stage", "producer", "admin"}
    assert len(set(credentials.passwords.values())) == 4
    assert Credentials.load_or_create(tmp_path / "credentials.json") == credentials  # kept
    ca = tmp_path / "tls" / "ca.pem"
    files = security.write_client_files(tmp_path, credentials, "h:1,h:2", ca)
    assert [f.user for f in files] == ["stage", "producer", "admin"]
    for path in [tmp_path / "credentials.json", *(p for f in files for p in (f.env, f.properties))]:
        assert os.stat(path).st_mode & 0o777 == 0o600
    env = LocalCluster(tmp_path).client_environment("stage")
    assert env == {
        "CLAIMS_KAFKA_BOOTSTRAP": "h:1,h:2",
        "CLAIMS_SECURITY_PROTOCOL": "SASL_SSL",
        "CLAIMS_SASL_MECHANISM": "SCRAM-SHA-512",
        "CLAIMS_SASL_USERNAME": "stage",
        "CLAIMS_SASL_PASSWORD": credentials.passwords["stage"],
        "CLAIMS_SSL_CAFILE": str(ca),
    }
    properties = _properties((tmp_path / "admin.properties").read_text())
    assert properties["security.protocol"] == "SASL_SSL"
    assert properties["ssl.truststore.type"] == "PEM"
    assert properties["ssl.truststore.location"] == str(ca)
    assert f'password="{credentials.passwords["admin"]}"' in properties["sasl.jaas.config"]


def test_scram_credentials_carry_a_salted_password_not_the_password() -> None:
    argument = security.scram_credential("stage", "pa55word", salt=b"0123456789abcdef")
    assert argument.startswith("SCRAM-SHA-512=[name=stage,iterations=4096,")
    assert f'salt="{base64.b64encode(b"0123456789abcdef").decode()}"' in argument
    assert "pa55word" not in argument
    salted = argument.split('saltedpassword="')[1].split('"')[0]
    assert len(base64.b64decode(salted)) == 64  # SHA-512
    assert security.scram_credential("stage", "other", salt=b"0123456789abcdef") != argument


@pytest.mark.parametrize(
    ("brokers", "expected"), [(1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2))]
)
def test_replication_follows_the_size_of_the_cluster(
    brokers: int, expected: tuple[int, int]
) -> None:
    assert default_replication(brokers) == expected


def test_broker_status_json_lists_every_node(tmp_path: Path) -> None:
    ports = free_ports(3)
    env = {
        "CLAIMS_LOCAL_BROKER_HOME": str(tmp_path),
        "CLAIMS_KAFKA_BOOTSTRAP": ",".join(f"127.0.0.1:{p}" for p in ports),
    }
    result = runner.invoke(app, ["broker", "status", "--json"], env=env)
    assert result.exit_code == 1  # no node runs
    nodes = json.loads(result.stdout)
    assert [(n["node"], n["port"], n["pid"], n["running"]) for n in nodes] == [
        (1, ports[0], None, False),
        (2, ports[1], None, False),
        (3, ports[2], None, False),
    ]


def test_the_first_node_named_stands_for_its_recorded_cluster(tmp_path: Path) -> None:
    ports = free_ports(6)
    shape = {"nodes": 3, "secure": True, "host": "127.0.0.1", "ports": ports[:3],
             "controller_ports": ports[3:]}  # fmt: skip
    (tmp_path / "cluster.json").write_text(json.dumps(shape))
    env = {
        "CLAIMS_LOCAL_BROKER_HOME": str(tmp_path),
        "CLAIMS_KAFKA_BOOTSTRAP": f"127.0.0.1:{ports[0]}",  # as in node 1's settings
    }
    result = runner.invoke(app, ["broker", "status", "--json"], env=env)
    nodes = json.loads(result.stdout)
    assert [(n["node"], n["port"], n["controller_port"]) for n in nodes] == [
        (1, ports[0], ports[3]),
        (2, ports[1], ports[4]),
        (3, ports[2], ports[5]),
    ]


def test_run_refuses_a_secured_local_cluster_rather_than_using_one_user_for_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAIMS_KAFKA_BOOTSTRAP", raising=False)
    shape = {"nodes": 1, "secure": True, "host": "127.0.0.1", "ports": [9092],
             "controller_ports": [9193]}  # fmt: skip
    (tmp_path / "cluster.json").write_text(json.dumps(shape))
    result = runner.invoke(app, ["run"], env={"CLAIMS_LOCAL_BROKER_HOME": str(tmp_path)})
    assert result.exit_code == 2
    assert "is secured" in result.output
