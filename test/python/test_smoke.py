"""Smoke test of the Python wheel built by `npx projen package:python`.

Runs in a fresh virtual environment with only the wheel, aws-cdk-lib and constructs installed
(scripts/smoke-python.sh): it proves that the jsii bindings load, that every construct can be
used from Python, and that the handler bundles shipped inside the wheel are found at synth time.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import aws_cdk as cdk
import aws_cdk.aws_dynamodb as dynamodb
import aws_cdk.aws_ec2 as ec2
import aws_cdk.aws_iam as iam
import pytest
from aws_cdk.assertions import Match, Template

import cdk_lambda_microvms as microvms

IMAGE_DIR = str(pathlib.Path(__file__).parent / "image")
README = pathlib.Path(__file__).parents[2] / "README.md"


ACCOUNT = "111111111111"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def synth():
    """Synthesizes one stack that uses every construct; returns (template, cloud assembly dir, stack)."""
    outdir = tempfile.mkdtemp(prefix="py-smoke-")
    app = cdk.App(outdir=outdir)
    stack = cdk.Stack(app, "PySmoke", env=cdk.Environment(account=ACCOUNT, region=REGION))

    runner = iam.Role(stack, "Runner", assumed_by=iam.AccountRootPrincipal())
    operator = iam.Role(stack, "Operator", assumed_by=iam.AccountRootPrincipal())
    execution_role = iam.Role(stack, "ExecutionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

    # A network connector in a VPC: MicroVMs reach the VPC (HTTPS out) through it.
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
    connector = microvms.NetworkConnector(
        stack,
        "Connector",
        vpc=vpc,
        vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        network_connector_name="py-smoke-egress",
        tags={"team": "python"},
    )
    connector.connections.allow_to_any_ipv4(ec2.Port.tcp(443), "HTTPS out")
    connector.grant_pass(runner)

    # An image from an asset directory.
    image = microvms.MicroVmImage(
        stack,
        "Image",
        code=microvms.MicroVmCode.from_asset(IMAGE_DIR),
        image_name="py-smoke-image",
        description="from Python",
        memory=cdk.Size.gibibytes(4),
        architecture=microvms.MicroVmArchitecture.ARM_64,
        environment={"GREETING": "hello"},
        hooks=microvms.MicroVmHooks(port=9000, ready=microvms.HookOptions(timeout=cdk.Duration.seconds(20))),
        egress_connectors=[connector],
        keep_versions=5,
        build_timeout=cdk.Duration.minutes(30),
    )
    image.add_environment("STAGE", "smoke")
    cdk.Tags.of(image).add("team", "python")
    image.grant_run(runner, execution_role)

    # A pinned version, and the version the current deploy built.
    stable = microvms.MicroVmImageVersion(
        stack,
        "Stable",
        image=image,
        image_version="3.0",
        status=microvms.MicroVmImageVersionStatus.ACTIVE,
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )
    stable.grant_run(runner, execution_role)
    image.current_version.grant_run(runner)

    # A fleet from the pinned version, with grants.
    fleet = microvms.MicroVmFleet(
        stack,
        "Fleet",
        image=image,
        version=stable,
        desired_count=2,
        execution_role=execution_role,
        ingress=[microvms.ManagedNetworkConnector.SHELL_INGRESS],
        egress_connectors=[connector],
        idle_policy=microvms.MicroVmIdlePolicy(
            suspend_after_idle=cdk.Duration.minutes(5),
            terminate_after_suspended=cdk.Duration.hours(1),
        ),
        maximum_duration=cdk.Duration.hours(2),
        update_policy=microvms.FleetUpdatePolicy.rolling(batch_size=1),
        launch_rate=2,
    )
    fleet.grant_connect(operator)
    fleet.grant_shell(operator)
    fleet.grant_manage(operator)

    assembly = app.synth()
    template = Template.from_stack(stack)
    return template, assembly.directory, stack


def test_image_resource_and_properties(synth):
    template, assembly_dir, _ = synth
    template.resource_count_is("Custom::LambdaMicroVmImage", 1)
    template.has_resource_properties(
        "Custom::LambdaMicroVmImage",
        {
            "Name": "py-smoke-image",
            "Description": "from Python",
            "MemoryMiB": "4096",
            "Architecture": "ARM_64",
            # Literal environment values are staged as an asset object, not written into the
            # template (README "What is in the template").
            "Environment": Match.absent(),
            "StagedProperties": {"Bucket": Match.any_value(), "Key": Match.string_like_regexp(r"^[0-9a-f]{64}\.json$")},
            "Hooks": {"Port": "9000", "Ready": {"TimeoutSeconds": "20"}},
            "EgressConnectors": [{"Fn::GetAtt": [Match.string_like_regexp("^Connector"), "NetworkConnectorArn"]}],
            "BuildTimeoutSeconds": "1800",
            "Tags": {"team": "python"},
            "CodeUri": Match.any_value(),
            "BuildRoleArn": Match.any_value(),
            "ServiceToken": Match.any_value(),
        },
    )
    (image,) = template.find_resources("Custom::LambdaMicroVmImage").values()
    key = image["Properties"]["StagedProperties"]["Key"]
    staged = json.loads((pathlib.Path(assembly_dir) / f"asset.{key}").read_text())
    assert staged == {"Environment": {"GREETING": "hello", "STAGE": "smoke"}}


def test_network_connector_in_the_vpc(synth):
    template, _, _ = synth
    template.resource_count_is("Custom::LambdaNetworkConnector", 1)
    template.has_resource_properties(
        "Custom::LambdaNetworkConnector",
        {
            "Name": "py-smoke-egress",
            "SubnetIds": [
                {"Ref": Match.string_like_regexp("^VpcPrivateSubnet1")},
                {"Ref": Match.string_like_regexp("^VpcPrivateSubnet2")},
            ],
            "SecurityGroupIds": [{"Fn::GetAtt": [Match.string_like_regexp("^Connector"), "GroupId"]}],
            "Tags": {"team": "python"},
        },
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {"SecurityGroupEgress": Match.array_with([Match.object_like({"CidrIp": "0.0.0.0/0", "FromPort": 443, "ToPort": 443})])},
    )


def test_image_versions(synth):
    template, _, _ = synth
    template.has_resource_properties(
        "Custom::LambdaMicroVmImageVersion",
        {
            "ImageArn": {"Fn::GetAtt": [Match.string_like_regexp("^Image"), "ImageArn"]},
            "ImageVersion": "3.0",
            "Status": "ACTIVE",
            "RemovalPolicy": "retain",
        },
    )
    # image.current_version: the version the deploy built, pinned while current.
    template.has_resource_properties(
        "Custom::LambdaMicroVmImageVersion",
        {"ImageVersion": {"Fn::GetAtt": [Match.string_like_regexp("^Image"), "ImageVersion"]}},
    )


def test_fleet_resource_and_properties(synth):
    template, _, _ = synth
    template.resource_count_is("Custom::LambdaMicroVmFleet", 1)
    template.has_resource_properties(
        "Custom::LambdaMicroVmFleet",
        {
            "ImageArn": Match.any_value(),
            "ImageVersion": {"Fn::GetAtt": [Match.string_like_regexp("^Stable"), "ImageVersion"]},
            "DesiredCount": "2",
            "ExecutionRoleArn": {"Fn::GetAtt": [Match.string_like_regexp("^ExecutionRole"), "Arn"]},
            "IngressConnectors": [Match.any_value()],
            "EgressConnectors": [{"Fn::GetAtt": [Match.string_like_regexp("^Connector"), "NetworkConnectorArn"]}],
            "IdlePolicy": {"MaxIdleSeconds": "300", "SuspendedSeconds": "3600", "AutoResume": "true"},
            "MaximumDurationSeconds": "7200",
            "UpdatePolicy": "ROLLING",
            "BatchSize": "1",
            "LaunchRate": "2",
            "TableName": {"Ref": Match.string_like_regexp("^cdklambdamicrovmsProviderInventory")},
        },
    )
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    (fleet,) = template.find_resources("Custom::LambdaMicroVmFleet").values()
    # The AWS-managed SHELL_INGRESS connector's ARN (account `aws`), joined from the partition and Region.
    ingress = json.dumps(fleet["Properties"]["IngressConnectors"])
    assert re.search(r":lambda:us-east-1:aws:network-connector:[^\"]*SHELL_INGRESS\"", ingress), ingress


def test_fleet_grants(synth):
    template, _, _ = synth
    actions = {a for s in _policy_statements_of_role(template, "Operator") for a in _as_list(s["Action"])}
    for action in [
        "lambda:CreateMicrovmAuthToken",
        "lambda:CreateMicrovmShellAuthToken",
        "lambda:GetMicrovm",
        "lambda:ListMicrovms",
        "lambda:SuspendMicrovm",
        "lambda:ResumeMicrovm",
        "lambda:TerminateMicrovm",
        "dynamodb:Query",
    ]:
        assert action in actions, f"{action} not granted to the operator: {sorted(actions)}"


def test_image_grant_run(synth):
    template, _, stack = synth
    runner_policy = _policy_statements_of_role(template, "Runner")
    actions = {a for s in runner_policy for a in _as_list(s["Action"])}
    assert "lambda:RunMicrovm" in actions
    assert "lambda:PassNetworkConnector" in actions
    pass_role = [s for s in runner_policy if "iam:PassRole" in _as_list(s["Action"])]
    assert len(pass_role) == 1
    assert pass_role[0]["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}


def test_handler_bundles_are_found_in_the_wheel(synth):
    """The provider functions' code is the lambda-dist/<handler> bundle shipped in the wheel."""
    template, outdir, _ = synth
    functions = template.find_resources("AWS::Lambda::Function", {"Properties": {"Handler": "index.onEvent"}})
    # One provider per stack for all four resource types: one onEvent function dispatching on the type.
    assert len(functions) == 1, f"expected 1 provider onEvent function, got {sorted(functions)}"
    for logical_id, fn in functions.items():
        key = fn["Properties"]["Code"]["S3Key"]
        asset_hash = key.split(".")[0]
        bundle = pathlib.Path(outdir) / f"asset.{asset_hash}" / "index.js"
        assert bundle.is_file(), f"{logical_id}: handler bundle {bundle} was not staged"
        text = bundle.read_text()
        # The bundle includes the MicroVMs SDK client (Lambda's built-in SDK predates the service).
        assert len(text) > 50_000, f"{logical_id}: handler bundle is only {len(text)} bytes"
        assert "onEvent" in text and "isComplete" in text


def test_image_code_asset_is_staged(synth):
    _, outdir, _ = synth
    manifest = json.loads((pathlib.Path(outdir) / "PySmoke.assets.json").read_text())
    dockerfiles = [
        f for f in manifest["files"].values()
        if (pathlib.Path(outdir) / f["source"]["path"] / "Dockerfile").is_file()
    ]
    assert len(dockerfiles) == 1
    assert dockerfiles[0]["source"]["packaging"] == "zip"


def test_imports_and_their_grants():
    """Each construct imported by name, ARN or attributes, with grants on the imports."""
    stack = cdk.Stack(cdk.App(), "Imports", env=cdk.Environment(account=ACCOUNT, region=REGION))
    consumer = iam.Role(stack, "Consumer", assumed_by=iam.AccountRootPrincipal())
    image = microvms.MicroVmImage.from_image_name(stack, "Image", "batch")
    version = microvms.MicroVmImageVersion.from_version_attributes(stack, "Version", image=image, image_version="7.0")
    connector = microvms.NetworkConnector.from_network_connector_arn(
        stack, "Connector", f"arn:aws:lambda:{REGION}:{ACCOUNT}:network-connector:nc-0123abcd")
    fleet = microvms.MicroVmFleet.from_fleet_attributes(
        stack, "Fleet", fleet_id="batch-fleet", image=image,
        inventory_table=dynamodb.Table.from_table_name(stack, "Inventory", "batch-inventory"))
    assert version.image_version == "7.0"
    assert connector.network_connector_id == "nc-0123abcd"
    version.grant_run(consumer)
    connector.grant_pass(consumer)
    fleet.grant_read(consumer)

    statements = _policy_statements_of_role(Template.from_stack(stack), "Consumer")
    def resources_of(action):
        return json.dumps([s["Resource"] for s in statements if action in _as_list(s["Action"])])
    assert f":lambda:{REGION}:{ACCOUNT}:microvm-image:batch" in resources_of("lambda:RunMicrovm")
    assert f"arn:aws:lambda:{REGION}:{ACCOUNT}:network-connector:nc-0123abcd" in resources_of("lambda:PassNetworkConnector")
    assert ":table/batch-inventory" in resources_of("dynamodb:Query")


def test_validation_errors_reach_python():
    stack = cdk.Stack(cdk.App(), "Invalid")
    with pytest.raises(Exception, match="memory"):
        microvms.MicroVmImage(stack, "Image", code=microvms.MicroVmCode.from_asset(IMAGE_DIR), memory=cdk.Size.gibibytes(3))


def test_readme_quick_start_synthesizes():
    """The README's Python quick start, run as a CDK app from a directory with an `image/`."""
    section = README.read_text().split("\n### Python\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="py-quickstart-"))
    (workdir / "app.py").write_text(code)
    shutil.copytree(IMAGE_DIR, workdir / "image")
    outdir = workdir / "cdk.out"
    subprocess.run([sys.executable, "app.py"], cwd=workdir, check=True, timeout=300,
                   env={**os.environ, "CDK_OUTDIR": str(outdir)})
    template = json.loads((outdir / "MicroVms.template.json").read_text())
    types = [r["Type"] for r in template["Resources"].values()]
    assert types.count("Custom::LambdaMicroVmImage") == 1
    assert any(r["Type"] == "AWS::IAM::Policy" and "lambda:RunMicrovm" in json.dumps(r) for r in template["Resources"].values())


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _policy_statements_of_role(template, role_id_prefix):
    statements = []
    for policy in template.find_resources("AWS::IAM::Policy").values():
        roles = policy["Properties"].get("Roles", [])
        if any(r.get("Ref", "").startswith(role_id_prefix) for r in roles):
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    assert statements, f"no policy attached to role {role_id_prefix}"
    return statements
