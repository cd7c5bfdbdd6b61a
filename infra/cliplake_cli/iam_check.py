"""The static IAM check: every call the code makes (`cliplake_cli.iam_calls`), and every call AWS makes for the
system (derived from the template), against the transformed template's policies, as IAM evaluates them.

For each principal of the stack it reports the needs that are granted, the needs that are missing, and the grants
(statement, action, resource) that no need uses. Principals:

- each function's execution role: its inline policy plus SAM's managed policies (their documents below: SAM's
  `AWSLambdaSQSQueueExecutionRole` grants ReceiveMessage, DeleteMessage and GetQueueAttributes only); besides the
  listed calls, Lambda's own: polling the function's queue (event source mapping) and writing its logs;
- the state machine's role: every Task's integration, read from the definition (`sqs:sendMessage*`, `sns:publish`),
  and a Distributed Map's child executions (start, describe, stop) and ItemReader (`s3:getObject`);
- the scheduler's role: `states:StartExecution` on each schedule's target;
- the Rekognition publish role: `sns:Publish` on the topic the functions give Rekognition;
- the queue policies: S3's notifications (from the bucket's NotificationConfiguration) and SNS's deliveries (from
  the sqs subscriptions), with `aws:SourceArn`/`aws:SourceAccount` as those services send them;
- every role's trust policy: assumable by the service that uses it.

Conditions are evaluated (StringEquals/Like, ArnEquals/Like, Bool, with IAM's rule that a key missing from the
request fails the condition): this is how `s3:prefix` and `iam:PassedToService`, which moto does not evaluate, are
checked. Managed policies' grants are AWS's and never reported unused. Nothing here needs a network.

    python -m cliplake_cli.iam_check [template.yaml]      # prints the report; exit 1 when something is missing
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from cliplake_cli.iam_calls import FUNCTIONS, OPERATIONS, PLAN_ITEMS, Need
from cliplake_localcloud.template import Resolver, load_template, resources_of_type, transform

ACCOUNT, REGION, STACK = "123456789012", "us-east-1", "cliplake"
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        },
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        },
    ],
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class Grant:
    """One (action, resource) pattern of one statement: the unit of "unused"."""

    principal: str
    statement: str  # Sid, or "#<index>"
    action: str
    resource: str


@dataclass
class Principal:
    name: str
    statements: list[dict[str, Any]]
    managed: list[dict[str, Any]] = field(default_factory=list)
    needs: list[Need] = field(default_factory=list)


@dataclass
class Report:
    granted: list[tuple[str, Need]] = field(default_factory=list)
    missing: list[tuple[str, Need]] = field(default_factory=list)
    unused: list[Grant] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{len(self.granted)} granted, {len(self.missing)} missing, {len(self.unused)} unused"]
        out += [f"  MISSING {p}: {n.action} on {n.resource} ({n.why})" for p, n in self.missing]
        out += [f"  UNUSED  {g.principal} [{g.statement}]: {g.action} on {g.resource}" for g in self.unused]
        return out


def _condition_holds(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    context = {k.lower(): v for k, v in context.items()}
    for operator, tests in conditions.items():
        op = operator.removesuffix("IfExists")
        for key, expected in tests.items():
            actual = context.get(key.lower())
            if actual is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            values = [str(v) for v in _as_list(expected)]
            if op in {"StringEquals", "ArnEquals"}:
                ok = actual in values
            elif op in {"StringLike", "ArnLike"}:
                ok = any(fnmatchcase(actual, v) for v in values)
            elif op == "StringNotEquals":
                ok = actual not in values
            elif op == "Bool":
                ok = actual.lower() in [v.lower() for v in values]
            else:
                raise ValueError(f"condition operator {operator} is not evaluated by this check")
            if not ok:
                return False
    return True


def _principal_matches(statement: dict[str, Any], service: str | None) -> bool:
    if "Principal" not in statement:
        return service is None  # an identity policy
    principal = statement["Principal"]
    if principal == "*":
        return True
    return service is not None and service in _as_list(principal.get("Service", []))


def evaluate(statements: list[dict[str, Any]], need: Need, service: str | None = None) -> list[tuple[int, str, str]]:
    """The (statement index, action pattern, resource pattern) that allow `need`; [] when denied or not allowed."""
    allowing: list[tuple[int, str, str]] = []
    for i, st in enumerate(statements):
        if not _principal_matches(st, service):
            continue
        actions = [a for a in _as_list(st.get("Action", [])) if fnmatchcase(need.action.lower(), a.lower())]
        resources = [r for r in _as_list(st.get("Resource", "*")) if fnmatchcase(need.resource, r)]
        if not actions or not resources or not _condition_holds(st.get("Condition", {}), need.context):
            continue
        if st.get("Effect") == "Deny":
            return []
        allowing += [(i, a, r) for a in actions for r in resources]
    return allowing


def check(principals: list[Principal], services: dict[str, str] | None = None) -> Report:
    """`services`: principal name -> the service principal a resource policy is evaluated for."""
    report = Report()
    services = services or {}
    for p in principals:
        used: set[tuple[int, str, str]] = set()
        for need in p.needs:
            found = evaluate(p.statements, need, services.get(p.name))
            managed = evaluate(p.managed, need) if not found else []
            if found or managed:
                report.granted.append((p.name, need))
                used.update(found)
            else:
                report.missing.append((p.name, need))
        for i, st in enumerate(p.statements):
            if st.get("Effect") != "Allow":
                continue
            for a in _as_list(st.get("Action", [])):
                for r in _as_list(st.get("Resource", "*")):
                    if (i, a, r) not in used:
                        report.unused.append(Grant(p.name, st.get("Sid", f"#{i}"), a, r))
    return report


# ------------------------------------------------------------------------------------------- the template
def _physical_ids(cfn: dict[str, Any]) -> dict[str, str]:
    """Plausible physical ids, as CloudFormation would name the stack's resources."""
    ids = {}
    for lid, res in cfn["Resources"].items():
        t, props = res["Type"], res.get("Properties", {})
        if t == "AWS::SQS::Queue":
            ids[lid] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-{lid}"
        elif t == "AWS::SNS::Topic":
            ids[lid] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{STACK}-{lid}"
        elif t == "AWS::StepFunctions::StateMachine":
            name = props.get("StateMachineName", f"{lid}-AbC123")
            if isinstance(name, dict):
                name = {"Fn::Sub": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name['Fn::Sub']}"}
            ids[lid] = name if isinstance(name, dict) else f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        elif t == "AWS::SecretsManager::Secret":
            ids[lid] = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{lid}-AbC123"
        elif t == "AWS::S3::Bucket":
            ids[lid] = props.get("BucketName", f"{STACK}-{lid}".lower())
        else:
            ids[lid] = f"{STACK}-{lid}"
    return ids


def _resolver(cfn: dict[str, Any]) -> Resolver:
    stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/1b2c3d4e-5f60-4a7b-8c9d-0e1f2a3b4c5d"
    resolver = Resolver(cfn, {}, region=REGION, account_id=ACCOUNT, stack_name=STACK, stack_id=stack_id)
    ids = _physical_ids(cfn)
    for lid, value in list(ids.items()):  # names computed from parameters (e.g. the bucket's)
        ids[lid] = str(resolver.resolve(value)) if isinstance(value, dict) else value
    resolver.physical_ids = ids
    return resolver


def _sub(resolver: Resolver, text: str) -> str:
    return str(resolver.resolve({"Fn::Sub": text}))


def _statements_of_role(resolver: Resolver, role: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    props = role.get("Properties", {})
    inline = [
        s for p in props.get("Policies", []) for s in _as_list(resolver.resolve(p["PolicyDocument"])["Statement"])
    ]
    managed = []
    for arn in props.get("ManagedPolicyArns", []):
        name = str(resolver.resolve(arn)).rsplit("/", 1)[-1]
        if name not in MANAGED_POLICIES:
            raise ValueError(f"managed policy {name} has no known document: add it to MANAGED_POLICIES")
        managed += MANAGED_POLICIES[name]
    return inline, managed


def _role_id(value: Any) -> str:
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        att = value["Fn::GetAtt"]
        return att.split(".")[0] if isinstance(att, str) else att[0]
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    raise ValueError(f"not a reference to a role: {value!r}")


def _queue_arn(resolver: Resolver, url: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{url.rstrip('/').rsplit('/', 1)[-1]}"


def _tasks(states: dict[str, Any]) -> list[dict[str, Any]]:
    """The Task states, and the Map states in Distributed mode (they call Step Functions and S3 themselves)."""
    out = []
    for state in states.values():
        distributed = (state.get("ItemProcessor") or {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
        if state.get("Type") == "Task" or distributed:
            out.append(state)
        for inner in [state.get("ItemProcessor") or state.get("Iterator"), *state.get("Branches", [])]:
            if inner:
                out += _tasks(inner["States"])
    return out


def _distributed_map_needs(machine_arn: str, state: dict[str, Any]) -> list[Need]:
    """A Distributed Map starts, follows and stops child executions of its own state machine, and reads its items
    with its ItemReader (an S3 key from the state's input is checked with the example of `iam_calls`)."""
    name = machine_arn.rsplit(":", 1)[-1]
    child = machine_arn.replace(":stateMachine:", ":execution:") + f"/{state.get('Label', 'map')}:1b2c3d4e"
    needs = [Need("states:StartExecution", machine_arn, why=f"Distributed Map of {name}: child executions")]
    needs += [Need(a, child, why="Distributed Map: its child executions") for a in ("states:DescribeExecution",
                                                                                  "states:StopExecution")]  # fmt: skip
    reader = state.get("ItemReader")
    if reader:
        if reader["Resource"] != "arn:aws:states:::s3:getObject":
            raise ValueError(f"ItemReader {reader['Resource']} is not known to the IAM check: add its needs here")
        params = reader.get("Parameters", {})
        key = params.get("Key") or PLAN_ITEMS.split("}/", 1)[1]
        needs.append(Need("s3:GetObject", f"arn:aws:s3:::{params['Bucket']}/{key}", why="ItemReader s3:getObject"))
    return needs


def _integration_needs(resolver: Resolver, lid: str, machine: dict[str, Any]) -> list[Need]:
    props = machine["Properties"]
    definition = props["DefinitionString"]
    definition = str(resolver.resolve(definition)) if isinstance(definition, dict) else definition
    for key, value in (resolver.resolve(props.get("DefinitionSubstitutions")) or {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    needs = []
    for task in _tasks(json.loads(definition)["States"]):
        if task["Type"] == "Map":
            needs += _distributed_map_needs(resolver.physical_ids[lid], task)
            continue
        resource, params = task["Resource"], task.get("Parameters", {})
        if resource.startswith("arn:aws:states:::sqs:sendMessage"):
            needs.append(Need("sqs:SendMessage", _queue_arn(resolver, params["QueueUrl"]), why=f"Task {resource}"))
        elif resource.startswith("arn:aws:states:::sns:publish"):
            needs.append(Need("sns:Publish", params["TopicArn"], why=f"Task {resource}"))
        else:
            raise ValueError(f"integration {resource} is not known to the IAM check: add its needs here")
    return needs


def principals(cfn: dict[str, Any]) -> tuple[list[Principal], dict[str, str]]:
    resolver = _resolver(cfn)
    res = cfn["Resources"]
    out: list[Principal] = []
    services: dict[str, str] = {}
    trusts: list[tuple[str, str]] = []  # (role logical id, service that must be able to assume it)

    # functions
    mappings = resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    for lid, fn in resources_of_type(cfn, "AWS::Lambda::Function").items():
        if lid not in FUNCTIONS:
            raise ValueError(f"{lid} has no entry in cliplake_cli.iam_calls.FUNCTIONS")
        role_id = _role_id(fn["Properties"]["Role"])
        inline, managed = _statements_of_role(resolver, res[role_id])
        needs = [
            Need(n.action, _sub(resolver, n.resource), n.context, f"{op}: {n.why}")
            for op in FUNCTIONS[lid]
            for n in OPERATIONS[op]
        ]
        log_group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{STACK}-{lid}:*"
        needs += [
            Need(a, log_group, why="Lambda: the function's logs") for a in ("logs:CreateLogStream", "logs:PutLogEvents")
        ]
        for esm in mappings:
            if _role_id(esm["Properties"]["FunctionName"]) == lid:
                queue = str(resolver.resolve(esm["Properties"]["EventSourceArn"]))
                for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                    needs.append(Need(action, queue, why="Lambda: the event source mapping polls the queue"))
        out.append(Principal(role_id, inline, managed, needs))
        trusts.append((role_id, "lambda.amazonaws.com"))

    # state machines
    for lid, machine in resources_of_type(cfn, "AWS::StepFunctions::StateMachine").items():
        role_id = _role_id(machine["Properties"]["RoleArn"])
        inline, managed = _statements_of_role(resolver, res[role_id])
        out.append(Principal(role_id, inline, managed, _integration_needs(resolver, lid, machine)))
        trusts.append((role_id, "states.amazonaws.com"))

    # schedules
    for lid, schedule in resources_of_type(cfn, "AWS::Scheduler::Schedule").items():
        target = schedule["Properties"]["Target"]
        role_id = _role_id(target["RoleArn"])
        inline, managed = _statements_of_role(resolver, res[role_id])
        need = Need("states:StartExecution", str(resolver.resolve(target["Arn"])), why=f"{lid}: its target")
        out.append(Principal(role_id, inline, managed, [need]))
        trusts.append((role_id, "scheduler.amazonaws.com"))

    # the role Rekognition publishes completions with (the functions that start jobs pass it with the topic)
    functions = resources_of_type(cfn, "AWS::Lambda::Function").values()
    envs = [f["Properties"].get("Environment", {}).get("Variables", {}) for f in functions]
    env = next((e for e in envs if "CLIPLAKE_REKOGNITION_ROLE_ARN" in e), {})
    if env:
        role_id = _role_id(env["CLIPLAKE_REKOGNITION_ROLE_ARN"])
        inline, managed = _statements_of_role(resolver, res[role_id])
        topic = str(resolver.resolve(env["CLIPLAKE_REKOGNITION_TOPIC_ARN"]))
        out.append(Principal(role_id, inline, managed, [Need("sns:Publish", topic, why="Rekognition's completion")]))
        trusts.append((role_id, "rekognition.amazonaws.com"))

    # queue policies: what S3 and SNS deliver
    deliveries: dict[str, list[tuple[str, Need]]] = {}
    for lid, bucket in resources_of_type(cfn, "AWS::S3::Bucket").items():
        bucket_arn = f"arn:aws:s3:::{resolver.physical_ids[lid]}"
        conf = bucket.get("Properties", {}).get("NotificationConfiguration", {})
        for q in conf.get("QueueConfigurations", []):
            arn = str(resolver.resolve(q["Queue"]))
            context = {"aws:SourceArn": bucket_arn, "aws:SourceAccount": ACCOUNT}
            need = Need("sqs:SendMessage", arn, context, why=f"S3 notification of {lid}")
            deliveries.setdefault(arn, []).append(("s3.amazonaws.com", need))
    for lid, sub in resources_of_type(cfn, "AWS::SNS::Subscription").items():
        props = sub["Properties"]
        if props.get("Protocol") == "sqs":
            arn = str(resolver.resolve(props["Endpoint"]))
            context = {"aws:SourceArn": str(resolver.resolve(props["TopicArn"])), "aws:SourceAccount": ACCOUNT}
            need = Need("sqs:SendMessage", arn, context, why=f"SNS delivery ({lid})")
            deliveries.setdefault(arn, []).append(("sns.amazonaws.com", need))
    for lid, policy in resources_of_type(cfn, "AWS::SQS::QueuePolicy").items():
        props = resolver.resolve(policy["Properties"])
        statements = _as_list(props["PolicyDocument"]["Statement"])
        for url in props["Queues"]:
            arn = _queue_arn(resolver, url)
            for service, need in deliveries.pop(arn, []):
                name = f"{lid} ({service})"
                out.append(Principal(name, statements, [], [need]))
                services[name] = service
    for arn, pending in deliveries.items():  # a delivery to a queue without a policy is refused
        for service, need in pending:
            out.append(Principal(f"queue policy of {arn} ({service})", [], [], [need]))
            services[f"queue policy of {arn} ({service})"] = service

    # trust policies
    for role_id, service in trusts:
        document = resolver.resolve(res[role_id]["Properties"]["AssumeRolePolicyDocument"])
        name = f"{role_id} trust"
        need = Need("sts:AssumeRole", "*", {"aws:SourceAccount": ACCOUNT}, why=f"{service} assumes it")
        out.append(Principal(name, [{**s, "Resource": "*"} for s in _as_list(document["Statement"])], [], [need]))
        services[name] = service
    return out, services


def check_template(path: str | Path | None = None) -> Report:
    cfn = transform(load_template(path))
    found, services = principals(cfn)
    return check(found, services)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    report = check_template(args[0] if args else None)
    print("\n".join(report.lines()))
    return 1 if report.missing else 0


if __name__ == "__main__":
    sys.exit(main())
