"""The stage's access on a secured cluster: which ACLs each of its users needs, and granting them.

Least privilege, derived from `Settings` so that renamed topics, another consumer group or a
new output topic are covered without editing a list:

- the stage's user reads the input topic with its consumer group and writes each output
  topic (every topic of `stage_topics` but the input), and nothing else;
- the producer's user writes the input topic, and nothing else;
- with exactly_once, the stage's user also writes transactional ids that begin with
  `<app id>-` (a PREFIXED ACL): each worker's id is `<app id>-<instance id>`, and instances
  come and go without an ACL change.

READ and WRITE imply DESCRIBE; WRITE on a topic also allows the idempotent producer (Kafka
3.0+, KIP-679). Creating topics and granting these ACLs is the admin's job (a super user).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from stream.kafka import clients
from stream.kafka.topics import stage_topics
from stream.settings import Settings

Resource = Literal["topic", "group", "transactional_id"]
Operation = Literal["READ", "WRITE"]
Pattern = Literal["LITERAL", "PREFIXED"]

RESOURCE_TYPES: dict[Resource, ResourceType] = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional_id": ResourceType.TRANSACTIONAL_ID,
}


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL on a resource name (or, PREFIXED, every name it begins), from any host."""

    principal: str  # "User:stage"
    resource: Resource
    name: str
    operation: Operation
    pattern: Pattern = "LITERAL"

    def binding(self) -> AclBinding:
        return AclBinding(
            RESOURCE_TYPES[self.resource],
            self.name,
            ResourcePatternType[self.pattern],
            self.principal,
            "*",
            AclOperation[self.operation],
            AclPermissionType.ALLOW,
        )

    def kafka_acls(self, bootstrap: str = "BROKER:9092") -> str:
        """The same ACL as a `kafka-acls.sh` command line, for clusters run by others."""
        prefixed = " --resource-pattern-type prefixed" if self.pattern == "PREFIXED" else ""
        return (
            f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config admin.properties "
            f"--add --allow-principal {self.principal} --operation {self.operation.title()} "
            f"--{self.resource.replace('_', '-')} {self.name}{prefixed}"
        )


def stage_grants(
    settings: Settings, stage_user: str = "stage", producer_user: str = "producer"
) -> list[Grant]:
    """Every ACL the stage and its producer need, and no other."""
    stage, producer = f"User:{stage_user}", f"User:{producer_user}"
    outputs = [name for name in stage_topics(settings) if name != settings.input_topic]
    grants = [
        Grant(stage, "topic", settings.input_topic, "READ"),
        Grant(stage, "group", settings.app_id, "READ"),
        *(Grant(stage, "topic", name, "WRITE") for name in outputs),
        Grant(producer, "topic", settings.input_topic, "WRITE"),
    ]
    if settings.exactly_once:  # WRITE implies DESCRIBE; idempotence needs no cluster ACL
        grants.append(Grant(stage, "transactional_id", f"{settings.app_id}-", "WRITE", "PREFIXED"))
    return grants


def _visible(admin_settings: Settings, grants: list[Grant], timeout: float) -> set[Grant]:
    admin = clients.admin(admin_settings)
    # None matches any name, principal and host (the stubs say str).
    wanted = AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ALLOW,
    )
    found: set[Grant] = set()
    for binding in admin.describe_acls(wanted, request_timeout=timeout).result(timeout):
        resources = [name for name, kind in RESOURCE_TYPES.items() if kind == binding.restype]
        operation = binding.operation.name
        pattern = binding.resource_pattern_type.name
        if resources and operation in ("READ", "WRITE") and pattern in ("LITERAL", "PREFIXED"):
            found.add(Grant(binding.principal, resources[0], binding.name, operation, pattern))
    return found & set(grants)


def grant(admin_settings: Settings, grants: list[Grant], timeout: float = 30.0) -> None:
    """Create the ACLs (as a user allowed to: the admin) and wait until the broker applies
    them. Idempotent: an ACL that exists is created again without error."""
    admin = clients.admin(admin_settings)
    futures = admin.create_acls([g.binding() for g in grants], request_timeout=timeout)
    for future in futures.values():
        future.result(timeout)
    # ACLs reach the brokers' authorizers through the metadata log, a moment later.
    deadline = time.monotonic() + timeout
    while _visible(admin_settings, grants, timeout) != set(grants):
        if time.monotonic() > deadline:
            raise KafkaException(f"the ACLs were created but not visible after {timeout:.0f} s")
        time.sleep(0.2)


def revoke(admin_settings: Settings, grants: list[Grant], timeout: float = 30.0) -> None:
    """Delete exactly these ACLs."""
    admin = clients.admin(admin_settings)
    filters = [
        AclBindingFilter(
            RESOURCE_TYPES[g.resource],
            g.name,
            ResourcePatternType[g.pattern],
            g.principal,
            "*",
            AclOperation[g.operation],
            AclPermissionType.ALLOW,
        )
        for g in grants
    ]
    for future in admin.delete_acls(filters, request_timeout=timeout).values():
        future.result(timeout)
