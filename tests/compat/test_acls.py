"""ACL requests get SECURITY_DISABLED, as from a Kafka broker with no authorizer: clients
report that ACLs are off (MirrorMaker 2 stops syncing them) instead of failing."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KafkaPythonResourceType
from kafka.errors import SecurityDisabledError

from tests.support.broker import BrokerProcess

ANY_ACL = AclBindingFilter(
    ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
    AclPermissionType.ANY,
)
ALICE_READS_T = AclBinding(
    ResourceType.TOPIC, "t", ResourcePatternType.LITERAL, "User:alice", "*", AclOperation.READ,
    AclPermissionType.ALLOW,
)


def test_librdkafka_is_told_security_is_disabled(broker: BrokerProcess) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    # librdkafka reads a DescribeAcls error as "no bindings", as it does from Kafka.
    assert admin.describe_acls(ANY_ACL).result(15) == []
    for futures in (admin.create_acls([ALICE_READS_T]), admin.delete_acls([ANY_ACL])):
        (future,) = futures.values()
        with pytest.raises(KafkaException) as raised:
            future.result(15)
        assert raised.value.args[0].code() == KafkaError.SECURITY_DISABLED


def test_kafka_python_is_told_security_is_disabled(broker: BrokerProcess) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        topics = ACLFilter(
            principal=None,
            host="*",
            operation=ACLOperation.ANY,
            permission_type=ACLPermissionType.ANY,
            resource_pattern=ResourcePatternFilter(
                KafkaPythonResourceType.TOPIC, None, ACLResourcePatternType.ANY
            ),
        )
        with pytest.raises(SecurityDisabledError):
            admin.describe_acls(topics)
        acl = ACL(
            principal="User:alice",
            host="*",
            operation=ACLOperation.READ,
            permission_type=ACLPermissionType.ALLOW,
            resource_pattern=ResourcePattern(KafkaPythonResourceType.TOPIC, "t"),
        )
        created = admin.create_acls([acl])
        assert created["succeeded"] == []
        assert created["failed"] == [SecurityDisabledError]
        ((_, deleted, error),) = admin.delete_acls([topics])
        assert (deleted, error) == ([], SecurityDisabledError)
    finally:
        admin.close()
