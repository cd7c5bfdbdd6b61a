"""IAM as the local cloud enforces it: moto's authorisation made resource-aware (cliplake_localcloud/iam_resources.py),
an administrator for the plumbing, each function under its own execution role, roles assumed by the services."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from cliplake_localcloud import environ
from cliplake_localcloud.identity import TrustPolicyError, trust_allows

pytestmark = pytest.mark.e2e
ACCOUNT, REGION = "123456789012", "us-east-1"


def _denied(call, *args, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(*args, **kwargs)
    code = info.value.response["Error"]["Code"]
    assert code in {"AccessDenied", "AccessDeniedException", "403"}, code
    return info.value.response["Error"].get("Message", "")


@pytest.fixture(scope="module")
def scoped(cloud):
    """Resources of each service, and an IAM user allowed exactly one of each (and an index of the table)."""
    tag = uuid.uuid4().hex[:8]
    ddb, sns, ssm = cloud.client("dynamodb"), cloud.client("sns"), cloud.client("ssm")
    sm, sfn, iam = cloud.client("secretsmanager"), cloud.client("stepfunctions"), cloud.client("iam")
    tables = []
    for name in (f"ok-{tag}", f"no-{tag}"):
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "g")],
            GlobalSecondaryIndexes=[{"IndexName": "gix", "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                                     "Projection": {"ProjectionType": "ALL"}}],
            BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
        tables.append(ddb.describe_table(TableName=name)["Table"]["TableArn"])
    topics = [sns.create_topic(Name=f"{p}-{tag}")["TopicArn"] for p in ("ok", "no")]
    params = [f"/t-{tag}/ok", f"/t-{tag}/no"]
    for p in params:
        ssm.put_parameter(Name=p, Value="v", Type="String")
    secrets = [sm.create_secret(Name=f"{p}-{tag}", SecretString="s")["ARN"] for p in ("ok", "no")]
    definition = json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})
    role = cloud.outputs["RekognitionRoleArn"]
    machines = [
        sfn.create_state_machine(name=f"{p}-{tag}", definition=definition, roleArn=role)["stateMachineArn"]
        for p in ("ok", "no")
    ]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchGetItem"],
             "Resource": tables[0]},
            {"Effect": "Allow", "Action": "dynamodb:Query", "Resource": f"{tables[0]}/index/gix"},
            {"Effect": "Allow", "Action": "sns:Publish", "Resource": topics[0]},
            {"Effect": "Allow", "Action": "ssm:GetParameter",
             "Resource": f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{params[0]}"},
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secrets[0]},
            {"Effect": "Allow", "Action": ["states:StartExecution", "states:DescribeStateMachine"],
             "Resource": machines[0]},
        ],
    }  # fmt: skip
    user = f"scoped-{tag}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="scoped", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    session = boto3.session.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=cloud.endpoint_url)

    return {"tables": tables, "topics": topics, "params": params, "secrets": secrets, "machines": machines,
            "client": client, "tag": tag}  # fmt: skip


# ------------------------------------------------------------------------------------ resource-aware checks
def test_dynamodb_table_and_index_scoped(scoped):
    ddb, (ok, no) = scoped["client"]("dynamodb"), scoped["tables"]
    item = {"pk": {"S": "a"}, "g": {"S": "x"}}
    ddb.put_item(TableName=ok.rsplit("/", 1)[-1], Item=item)
    assert ddb.get_item(TableName=ok, Key={"pk": {"S": "a"}})["Item"] == item  # by ARN too
    message = _denied(ddb.get_item, TableName=no.rsplit("/", 1)[-1], Key={"pk": {"S": "a"}})
    assert f"dynamodb:GetItem on resource: {no}" in message
    query = {"IndexName": "gix", "KeyConditionExpression": "g = :g", "ExpressionAttributeValues": {":g": {"S": "x"}}}
    assert ddb.query(TableName=ok.rsplit("/", 1)[-1], **query)["Count"] == 1
    _denied(ddb.query, TableName=ok.rsplit("/", 1)[-1], KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "a"}})  # fmt: skip  # the table itself: not granted


def test_dynamodb_batch_and_transaction_check_every_table_and_item_action(scoped):
    ddb, (ok, no) = scoped["client"]("dynamodb"), scoped["tables"]
    ok_name, no_name = ok.rsplit("/", 1)[-1], no.rsplit("/", 1)[-1]
    key = {"pk": {"S": "a"}}
    assert ddb.batch_get_item(RequestItems={ok_name: {"Keys": [key]}})["Responses"][ok_name]
    _denied(ddb.batch_get_item, RequestItems={ok_name: {"Keys": [key]}, no_name: {"Keys": [key]}})
    put = {"Put": {"TableName": ok_name, "Item": {"pk": {"S": "t"}}}}
    ddb.transact_write_items(TransactItems=[put])  # authorised as dynamodb:PutItem (IAM has no Transact* action)
    message = _denied(ddb.transact_write_items, TransactItems=[put, {"Update": {
        "TableName": ok_name, "Key": key, "UpdateExpression": "SET x = :x",
        "ExpressionAttributeValues": {":x": {"S": "1"}}}}])  # fmt: skip
    assert "dynamodb:UpdateItem" in message


def test_sns_topic_scoped(scoped):
    sns, (ok, no) = scoped["client"]("sns"), scoped["topics"]
    assert sns.publish(TopicArn=ok, Message="hi")["MessageId"]
    assert no in _denied(sns.publish, TopicArn=no, Message="hi")


def test_ssm_parameter_scoped(scoped):
    ssm, (ok, no) = scoped["client"]("ssm"), scoped["params"]
    assert ssm.get_parameter(Name=ok)["Parameter"]["Value"] == "v"
    assert f"parameter{no}" in _denied(ssm.get_parameter, Name=no)


def test_secret_scoped_by_name_or_arn(scoped):
    sm, (ok, no) = scoped["client"]("secretsmanager"), scoped["secrets"]
    assert sm.get_secret_value(SecretId=ok)["SecretString"] == "s"
    name = ok.rsplit(":", 1)[-1].rsplit("-", 1)[0]  # the name: resolved to the ARN with its random suffix
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "s"
    assert no in _denied(sm.get_secret_value, SecretId=no.rsplit(":", 1)[-1].rsplit("-", 1)[0])


def test_state_machine_scoped(scoped):
    sfn, (ok, no) = scoped["client"]("stepfunctions"), scoped["machines"]
    assert sfn.describe_state_machine(stateMachineArn=ok)["stateMachineArn"] == ok
    assert no in _denied(sfn.describe_state_machine, stateMachineArn=no)
    _denied(sfn.start_execution, stateMachineArn=no, name="x")


def test_unknown_keys_and_the_fixed_testing_keys_are_refused(cloud):
    s3 = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    with pytest.raises(ClientError) as info:
        s3.client("s3", endpoint_url=cloud.endpoint_url).list_buckets()
    assert info.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_presigned_urls_are_authenticated_and_authorised(cloud, lake):
    key = f"media-raw/video/dropin/iam/20250101_000000/p {uuid.uuid4().hex[:6]}.mp4"
    lake.client.put_object(Bucket=lake.bucket, Key=key, Body=b"0123456789")
    url = lake.presigned_url(key)
    assert requests.get(url, headers={"Range": "bytes=2-4"}, timeout=10).content == b"234"
    assert requests.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=10).status_code == 403
    assert requests.head(url, timeout=10).status_code == 403  # the signature covers the method, as on AWS
    spec = cloud.functions["IndexFunction"]  # may read media-processed/ only
    env, _ = cloud.function_environment(spec)
    session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"], region_name=REGION,
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                                    aws_session_token=env["AWS_SESSION_TOKEN"])  # fmt: skip
    from cliplake.adapters.s3 import S3_CONFIG

    index_s3 = session.client("s3", endpoint_url=cloud.endpoint_url, config=S3_CONFIG)
    denied = index_s3.generate_presigned_url("get_object", Params={"Bucket": lake.bucket, "Key": key})
    assert requests.get(denied, timeout=10).status_code == 403


def test_a_multi_object_delete_is_authorised_key_by_key(cloud, lake):
    """DeleteObjects is s3:DeleteObject on each key (IAM has no s3:DeleteObjects): segment may delete the parts
    of a segmented transcode, and nothing else."""
    parts = [f"media-processed/video/dropin/iam/x{uuid.uuid4().hex[:6]}_h264.parts/{i:05d}.mp4" for i in range(2)]
    other = f"media-processed/video/dropin/iam/x{uuid.uuid4().hex[:6]}.json"
    for key in [*parts, other]:
        lake.client.put_object(Bucket=lake.bucket, Key=key, Body=b"x")
    env, _ = cloud.function_environment(cloud.functions["SegmentFunction"])
    session = boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"], region_name=REGION,
                                    aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                                    aws_session_token=env["AWS_SESSION_TOKEN"])  # fmt: skip
    s3 = session.client("s3", endpoint_url=cloud.endpoint_url)
    refused = s3.delete_objects(Bucket=lake.bucket, Delete={"Objects": [{"Key": k} for k in [*parts, other]]})
    assert {e["Key"] for e in refused.get("Errors", [])} == {*parts, other} and not refused.get("Deleted")
    done = s3.delete_objects(Bucket=lake.bucket, Delete={"Objects": [{"Key": k} for k in parts]})
    assert {d["Key"] for d in done["Deleted"]} == set(parts) and not done.get("Errors")
    assert lake.client.head_object(Bucket=lake.bucket, Key=other)["ContentLength"] == 1


# ------------------------------------------------------------------------------------------ identities
def test_each_function_runs_as_its_own_role_with_its_own_environment(cloud):
    """A handler sees its role's credentials and its function's name; the role's policy is what it may do."""
    seen: dict[str, Any] = {}
    done = threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        from cliplake.services import get_services
        from cliplake.settings import IndexSettings

        svc = get_services(IndexSettings)
        session = boto3.session.Session()
        seen["arn"] = session.client("sts").get_caller_identity()["Arn"]
        seen["function"] = environ_value("AWS_LAMBDA_FUNCTION_NAME")
        seen["same_services"] = get_services(IndexSettings) is svc
        try:
            svc.catalog.client.query(TableName=svc.catalog.table, KeyConditionExpression="pk = :p",
                                     ExpressionAttributeValues={":p": {"S": "STATS"}})  # fmt: skip
            seen["query"] = "allowed"
        except ClientError as err:
            seen["query"] = err.response["Error"]["Code"]
        done.set()
        return {"batchItemFailures": []}

    with cloud.dispatcher.override(IndexFunction=handler):
        cloud.client("sqs").send_message(QueueUrl=cloud.outputs["SummaryQueueUrl"], MessageBody="{}")
        assert done.wait(30)
        cloud.wait_idle(timeout=30)
    role = cloud.resolver.physical_ids["IndexFunctionRole"]
    assert f":assumed-role/{role}/" in seen["arn"]
    assert seen["function"] == cloud.functions["IndexFunction"].name
    assert seen["same_services"]
    assert seen["query"] == "AccessDeniedException"  # index's role has no dynamodb:Query
    # the plumbing (this thread) is the administrator
    assert ":user/" in cloud.client("sts").get_caller_identity()["Arn"]


def environ_value(key: str) -> str:
    import os

    return os.environ.get(key, "")


def test_the_overlay_is_visible_to_its_thread_only():
    import os

    installed = type(os.environ) is not os._Environ
    environ.install()
    os.environ["CLIPLAKE_TEST_SHARED"] = "process"
    try:
        seen = {}
        with environ.overlay({"CLIPLAKE_TEST_OWN": "mine"}, hidden={"CLIPLAKE_TEST_SHARED"}):
            seen["own"] = os.environ.get("CLIPLAKE_TEST_OWN")
            seen["hidden"] = os.environ.get("CLIPLAKE_TEST_SHARED")
            seen["listed"] = "CLIPLAKE_TEST_OWN" in dict(os.environ)
            other = {}
            t = threading.Thread(target=lambda: other.update(v=os.environ.get("CLIPLAKE_TEST_OWN")))
            t.start()
            t.join()
        assert seen == {"own": "mine", "hidden": None, "listed": True}
        assert other == {"v": None}
        assert os.environ.get("CLIPLAKE_TEST_SHARED") == "process" and "CLIPLAKE_TEST_OWN" not in os.environ
    finally:
        os.environ.pop("CLIPLAKE_TEST_SHARED", None)
        if not installed:
            environ.uninstall()


def test_services_assume_only_roles_that_trust_them(cloud):
    roles = cloud.roles
    publish = cloud.outputs["RekognitionRoleArn"]
    assert roles.credentials(publish, "rekognition.amazonaws.com").session_token
    with pytest.raises(TrustPolicyError, match=r"lambda\.amazonaws\.com"):
        roles.credentials(publish, "lambda.amazonaws.com")
    analyze_role = cloud.functions["AnalyzeFunction"].role_arn
    with pytest.raises(TrustPolicyError):
        roles.credentials(analyze_role, "rekognition.amazonaws.com")
    assert roles.credentials(analyze_role, "lambda.amazonaws.com") is roles.credentials(
        analyze_role, "lambda.amazonaws.com"
    )  # cached until shortly before it expires


def test_trust_policy_conditions():
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "rekognition.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}  # fmt: skip
    assert trust_allows(trust, "rekognition.amazonaws.com", {"aws:sourceaccount": ACCOUNT})
    assert not trust_allows(trust, "rekognition.amazonaws.com", {"aws:sourceaccount": "999999999999"})
    assert not trust_allows(trust, "lambda.amazonaws.com", {"aws:sourceaccount": ACCOUNT})
