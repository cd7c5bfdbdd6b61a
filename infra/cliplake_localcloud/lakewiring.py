"""What moto's CloudFormation skips of the lake's SQL resources, applied from the same template (see cloud.py's
`_WIRING`): the Glue database and tables and the Athena workgroup. moto deploys `AWS::CloudWatch::Dashboard`
itself; `AWS::Chatbot::SlackChannelConfiguration` (no moto service) exists only with its Slack parameters set, and is
then skipped with moto's warning: nothing in the local cloud posts to Slack.
"""

from __future__ import annotations

from typing import Any


def _wire_glue_database(cloud: Any, name: str, props: dict[str, Any], lid: str = "") -> None:
    database = dict(props["DatabaseInput"])
    cloud.client("glue").create_database(DatabaseInput=database)
    cloud.resolver.physical_ids[lid] = database["Name"]  # `Ref` of a Glue database is its name


def _wire_glue_table(cloud: Any, name: str, props: dict[str, Any], lid: str = "") -> None:
    table = dict(props["TableInput"])
    cloud.client("glue").create_table(DatabaseName=props["DatabaseName"], TableInput=table)
    cloud.resolver.physical_ids[lid] = table["Name"]


def _wire_workgroup(cloud: Any, name: str, props: dict[str, Any], lid: str = "") -> None:
    config = dict(props.get("WorkGroupConfiguration", {}))
    if "BytesScannedCutoffPerQuery" in config:
        config["BytesScannedCutoffPerQuery"] = int(config["BytesScannedCutoffPerQuery"])
    for key in ("EnforceWorkGroupConfiguration", "PublishCloudWatchMetricsEnabled"):
        if key in config:
            config[key] = str(config[key]).lower() == "true"
    args = {"Name": props["Name"], "Configuration": config}
    if "Description" in props:
        args["Description"] = props["Description"]
    cloud.client("athena").create_work_group(**args)
    cloud.resolver.physical_ids[lid] = props["Name"]  # `Ref` of a workgroup is its name


LAKE_WIRING = {
    "AWS::Glue::Database": _wire_glue_database,
    "AWS::Glue::Table": _wire_glue_table,
    "AWS::Athena::WorkGroup": _wire_workgroup,
}
