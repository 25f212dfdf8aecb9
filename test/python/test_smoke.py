"""Smoke test of the Python wheel built by `npx projen package:python`.

Runs in a fresh virtual environment with only the wheel, aws-cdk-lib and constructs installed
(scripts/smoke-python.sh): it proves that the jsii bindings load, that every construct can be
used from Python, and that the handler bundles shipped inside the wheel are found at synth time.
"""

import json
import os
import pathlib
import tempfile

import aws_cdk as cdk
import aws_cdk.aws_iam as iam
import pytest
from aws_cdk.assertions import Match, Template

import cdk_lambda_microvms as microvms

IMAGE_DIR = str(pathlib.Path(__file__).parent / "image")


@pytest.fixture(scope="module")
def synth():
    """Synthesizes one stack that uses every construct; returns (template, cloud assembly dir)."""
    outdir = tempfile.mkdtemp(prefix="py-smoke-")
    app = cdk.App(outdir=outdir)
    stack = cdk.Stack(app, "PySmoke", env=cdk.Environment(account="111111111111", region="us-east-1"))

    runner = iam.Role(stack, "Runner", assumed_by=iam.AccountRootPrincipal())
    execution_role = iam.Role(stack, "ExecutionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

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
        build_timeout=cdk.Duration.minutes(30),
    )
    image.add_environment("STAGE", "smoke")
    cdk.Tags.of(image).add("team", "python")
    image.grant_run(runner, execution_role)

    assembly = app.synth()
    template = Template.from_stack(stack)
    return template, assembly.directory, stack


def test_image_resource_and_properties(synth):
    template, _, _ = synth
    template.resource_count_is("Custom::LambdaMicroVmImage", 1)
    template.has_resource_properties(
        "Custom::LambdaMicroVmImage",
        {
            "Name": "py-smoke-image",
            "Description": "from Python",
            "MemoryMiB": "4096",
            "Architecture": "ARM_64",
            "Environment": {"GREETING": "hello", "STAGE": "smoke"},
            "Hooks": {"Port": "9000", "Ready": {"TimeoutSeconds": "20"}},
            "BuildTimeoutSeconds": "1800",
            "Tags": {"team": "python"},
            "CodeUri": Match.any_value(),
            "BuildRoleArn": Match.any_value(),
            "ServiceToken": Match.any_value(),
        },
    )


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
    assert functions, "no provider onEvent function in the template"
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


def test_validation_errors_reach_python():
    stack = cdk.Stack(cdk.App(), "Invalid")
    with pytest.raises(Exception, match="memory"):
        microvms.MicroVmImage(stack, "Image", code=microvms.MicroVmCode.from_asset(IMAGE_DIR), memory=cdk.Size.gibibytes(3))


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
