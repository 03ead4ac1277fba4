"""The Terraform tree, checked offline: hcl's formatter, a parse that holds it to the app's own
settings and to least privilege, and checkov with no failed check and every skip justified."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import hcl2
import pytest

from app.config import Settings
from tests.conftest import require_tool
from tests.support.server import ROOT

TERRAFORM = ROOT / "terraform"
FILES = sorted(TERRAFORM.glob("*.tf"))
CONCERNS = {
    "variables.tf",
    "versions.tf",
    "network.tf",
    "s3.tf",
    "rds.tf",
    "sqs.tf",
    "cognito.tf",
    "lambda.tf",
    "ecs.tf",
    "alb.tf",
    "iam.tf",
    "outputs.tf",
}
# Settings the services cannot run without, given what they are set to.
REQUIRED = {
    "web": {
        "CARGOHOLD_HOST",
        "CARGOHOLD_PORT",
        "CARGOHOLD_DATABASE_URL",
        "CARGOHOLD_DATABASE_PASSWORD",
        "CARGOHOLD_STORAGE",
        "CARGOHOLD_S3_BUCKET",
        "CARGOHOLD_S3_REGION",
        "CARGOHOLD_TOKEN_KEY",
        "CARGOHOLD_PUBLIC_URL",
        "CARGOHOLD_IDENTITY",
        "CARGOHOLD_COGNITO_USER_POOL_ID",
        "CARGOHOLD_COGNITO_CLIENT_ID",
        "CARGOHOLD_COGNITO_CLIENT_SECRET",
        "CARGOHOLD_COGNITO_ADMIN_GROUP",
        "CARGOHOLD_COGNITO_DOMAIN",
        "CARGOHOLD_LOG_FORMAT",
        "CARGOHOLD_TRUSTED_PROXIES",
        "CARGOHOLD_METRICS_TOKEN",
        "CARGOHOLD_ADMIN_PASSWORD",
    },
    "worker": {
        "CARGOHOLD_DATABASE_URL",
        "CARGOHOLD_DATABASE_PASSWORD",
        "CARGOHOLD_TOKEN_KEY",
        "CARGOHOLD_IDENTITY",
        "CARGOHOLD_COGNITO_USER_POOL_ID",
        "CARGOHOLD_COGNITO_CLIENT_ID",
        "CARGOHOLD_SIGNUP_QUEUE_URL",
        "CARGOHOLD_LOG_FORMAT",
    },
}
SECRET_SETTINGS = {
    "CARGOHOLD_DATABASE_PASSWORD",
    "CARGOHOLD_TOKEN_KEY",
    "CARGOHOLD_COGNITO_CLIENT_SECRET",
    "CARGOHOLD_METRICS_TOKEN",
    "CARGOHOLD_ADMIN_PASSWORD",
}
# Actions that take no resource, so "*" is the only way to grant them.
RESOURCELESS = {"ecr:GetAuthorizationToken", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def unquote(value):
    """python-hcl2 keeps string literals quoted and labels quoted; the tests want them bare."""
    if isinstance(value, str):
        if len(value) >= 2 and value[0] == value[-1] == '"':
            return value[1:-1]
        return value
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


@pytest.fixture(scope="module")
def tree() -> dict:
    """Every top-level block of the tree: {"resource": {type: {name: body}}, "locals": {...}}."""
    merged: dict = {"resource": {}, "data": {}, "locals": {}, "variable": {}, "output": {}}
    for path in FILES:
        with path.open() as f:
            parsed = unquote(hcl2.load(f))
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    merged[kind].setdefault(rtype, {}).update(named)
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
        for kind in ("variable", "output"):
            for block in parsed.get(kind, []):
                merged[kind].update(block)
    return merged


def setting_names() -> set[str]:
    return {
        f"CARGOHOLD_{f.name.upper()}" for f in dataclasses.fields(Settings) if f.name != "extra"
    }


def env_keys(tree: dict, local: str) -> set[str]:
    """The keys of a map local, following merge(local.x, {...}) as the tree writes them."""
    value = tree["locals"][local]
    if isinstance(value, dict):
        return set(value)
    keys = set(re.findall(r"\b(CARGOHOLD_[A-Z0-9_]+)\s*=", value))
    for other in re.findall(r"local\.(\w+)", value):
        keys |= env_keys(tree, other)
    return keys


def task_env(tree: dict, service: str) -> tuple[set[str], set[str]]:
    definition = tree["resource"]["aws_ecs_task_definition"][service]["container_definitions"]
    # The container definitions take their variables from these locals, and only from them.
    assert f"local.{service}_environment" in definition
    assert f"local.{service}_secrets" in definition
    assert "CARGOHOLD_" not in definition
    return env_keys(tree, f"{service}_environment"), env_keys(tree, f"{service}_secrets")


# ---- layout and formatting -----------------------------------------------------------------------


def test_one_file_per_concern_and_no_registry_modules():
    assert {p.name for p in FILES} >= CONCERNS
    assert (TERRAFORM / "terraform.tfvars.example").exists()
    for path in FILES:
        assert not re.search(r"^\s*module\s+\"", path.read_text(), re.M), path.name


def test_the_tree_is_formatted_as_hclfmt_writes_it():
    hclfmt = require_tool("hclfmt")
    for path in [*FILES, TERRAFORM / "terraform.tfvars.example"]:
        proc = subprocess.run(
            [hclfmt, "-check", "-require-no-change", str(path)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, f"{path.name}: run hclfmt -w on it\n{proc.stderr}"


# ---- the app's settings --------------------------------------------------------------------------


def test_every_variable_the_tasks_set_is_a_setting_the_app_reads(tree, monkeypatch):
    known = setting_names()
    everywhere = set()
    for path in FILES:
        everywhere |= set(re.findall(r"\bCARGOHOLD_[A-Z0-9_]+", path.read_text()))
    assert everywhere <= known, everywhere - known
    # And from_env really reads each one: a value set in the environment changes the setting.
    defaults = Settings()
    for name in sorted(everywhere):
        field = name.removeprefix("CARGOHOLD_").lower()
        default = getattr(defaults, field)
        if isinstance(default, bool):
            sample = "false" if default else "true"
        elif isinstance(default, int):
            sample = str(default + 7)
        elif isinstance(default, Path):
            sample = "/tmp/cargohold-sample"
        else:
            sample = f"sample-{field}"
        monkeypatch.setenv(name, sample)
        assert getattr(Settings.from_env(), field) != default, f"from_env ignores {name}"
        monkeypatch.delenv(name)


@pytest.mark.parametrize("service", ["web", "worker"])
def test_every_required_setting_is_set_and_secrets_come_from_secrets_manager(tree, service):
    environment, secrets = task_env(tree, service)
    assert not environment & secrets
    assert REQUIRED[service] <= environment | secrets, REQUIRED[service] - environment - secrets
    # Secret settings never sit in plain environment variables (visible in the task definition).
    assert not environment & SECRET_SETTINGS
    assert secrets <= SECRET_SETTINGS
    values = {**tree["locals"][f"common_{'secrets'}"]}
    assert all("secret" in str(v) for v in values.values())
    env = tree["locals"]["common_environment"]
    assert env["CARGOHOLD_IDENTITY"] == "cognito" and env["CARGOHOLD_STORAGE"] == "s3"
    assert env["CARGOHOLD_LOG_FORMAT"] == "json"


def test_the_web_tasks_trust_one_proxy_and_are_checked_on_readyz(tree):
    web = tree["locals"]["web_environment"]
    assert re.search(r'CARGOHOLD_TRUSTED_PROXIES\s*=\s*"1"', web)
    health = tree["resource"]["aws_lb_target_group"]["web"]["health_check"][0]
    assert health["path"] == "/readyz"
    images = [
        tree["resource"]["aws_ecs_task_definition"][s]["container_definitions"]
        for s in ("web", "worker")
    ]
    assert all("image = var.image" in d for d in images)
    assert 'command = ["python", "-m", "worker"]' in images[1]


def test_the_trigger_is_the_package_make_lambda_builds(tree):
    function = tree["resource"]["aws_lambda_function"]["signup"]
    assert function["handler"] == "lambda_signup.handler.handler"
    assert tree["variable"]["lambda_zip"]["default"] == "../build/lambda_signup.zip"
    assert "build/lambda_signup.zip" in (ROOT / "Makefile").read_text()
    source = (ROOT / "lambda_signup" / "handler.py").read_text()
    for name in function["environment"][0]["variables"]:
        assert f'"{name}"' in source, f"the trigger does not read {name}"
    assert function["timeout"] <= 5  # Cognito's limit for a trigger
    pool = tree["resource"]["aws_cognito_user_pool"]["main"]["lambda_config"][0]
    assert pool["post_confirmation"] == pool["pre_sign_up"] == "${aws_lambda_function.signup.arn}"
    permission = tree["resource"]["aws_lambda_permission"]["cognito"]
    assert permission["principal"] == "cognito-idp.amazonaws.com"
    assert permission["source_arn"] == "${aws_cognito_user_pool.main.arn}"


def test_the_hosted_ui_sends_people_back_to_the_consoles_callback(tree, tmp_path):
    from app import create_app
    from app.access.hosted_ui import SCOPES

    client = tree["resource"]["aws_cognito_user_pool_client"]["cargohold"]
    assert client["allowed_oauth_flows_user_pool_client"] is True
    assert client["allowed_oauth_flows"] == ["code"]  # never the implicit flow
    assert set(SCOPES.split()) <= set(client["allowed_oauth_scopes"])
    assert client["supported_identity_providers"] == ["COGNITO"]
    # Exactly the URLs the console sends: its callback route and its home, under the public URL
    # the tasks are given.
    app = create_app(Settings(data_dir=tmp_path))
    (callback,) = [r.rule for r in app.url_map.iter_rules(endpoint="console.cognito_callback")]
    (home,) = [r.rule for r in app.url_map.iter_rules(endpoint="console.home")]
    assert tree["locals"]["common_environment"]["CARGOHOLD_PUBLIC_URL"] == "${local.public_url}"
    assert client["callback_urls"] == ["${local.public_url}" + callback]
    assert client["logout_urls"] == ["${local.public_url}" + home]
    domain = tree["resource"]["aws_cognito_user_pool_domain"]["main"]
    assert domain["user_pool_id"] == "${aws_cognito_user_pool.main.id}"
    assert tree["locals"]["hosted_ui_url"] == (
        "https://${aws_cognito_user_pool_domain.main.domain}.auth.${var.region}.amazoncognito.com"
    )
    web = tree["locals"]["web_environment"]
    assert re.search(r"CARGOHOLD_COGNITO_DOMAIN\s*=\s*local\.hosted_ui_url", web)


def test_the_queue_has_a_dead_letter_queue(tree):
    queues = tree["resource"]["aws_sqs_queue"]
    redrive = queues["signup"]["redrive_policy"]
    assert "aws_sqs_queue.signup_dlq.arn" in redrive and "maxReceiveCount" in redrive
    assert queues["signup"]["fifo_queue"] and queues["signup_dlq"]["fifo_queue"]
    assert all(q["sqs_managed_sse_enabled"] for q in queues.values())


# ---- least privilege -----------------------------------------------------------------------------


def resources_of(statement: dict) -> list[str]:
    """A statement's resources; a `for` expression stays one string (it names no "*")."""
    found = statement.get("resources", [])
    return [found] if isinstance(found, str) else found


def statements(tree: dict, document: str) -> list[dict]:
    return tree["data"]["aws_iam_policy_document"][document]["statement"]


def test_task_and_trigger_policies_name_only_this_bucket_and_queue(tree):
    allowed = {
        "web": {
            "${aws_s3_bucket.blobs.arn}",
            "${aws_s3_bucket.blobs.arn}/*",
            "${aws_kms_key.main.arn}",
            "${aws_cognito_user_pool.main.arn}",
        },
        "worker": {"${aws_sqs_queue.signup.arn}"},
        "signup_lambda": {
            "${aws_sqs_queue.signup.arn}",
            "${aws_cloudwatch_log_group.signup_lambda.arn}:*",
            "${aws_kms_key.main.arn}",
            "*",
        },
    }
    for document, resources in allowed.items():
        for st in statements(tree, document):
            assert st.get("effect", "Allow") == "Allow"
            assert set(resources_of(st)) <= resources, (document, st["resources"])
            if "*" in resources_of(st):
                assert set(st["actions"]) <= RESOURCELESS, (document, st["actions"])
            for action in st["actions"]:
                assert "*" not in action, (document, action)
                if action.startswith("s3:"):
                    assert all("aws_s3_bucket.blobs" in r for r in st["resources"])
                if action.startswith("sqs:"):
                    assert st["resources"] == ["${aws_sqs_queue.signup.arn}"]
    # The worker only consumes; the trigger only sends.
    (worker,) = statements(tree, "worker")
    assert "sqs:SendMessage" not in worker["actions"]
    lambda_actions = {a for st in statements(tree, "signup_lambda") for a in st["actions"]}
    assert {a for a in lambda_actions if a.startswith("sqs:")} == {"sqs:SendMessage"}


def test_every_policy_names_its_resources(tree):
    for name, document in tree["data"]["aws_iam_policy_document"].items():
        if name == "kms":
            continue  # a key policy's "*" is the key itself
        for st in document["statement"]:
            if st.get("effect") == "Deny" or "sts:AssumeRole" in st.get("actions", []):
                continue
            if "*" in resources_of(st):
                assert set(st["actions"]) <= RESOURCELESS, (name, st["actions"])


# ---- nothing public ------------------------------------------------------------------------------


def test_nothing_is_public_but_the_load_balancers_https_listener(tree):
    res = tree["resource"]
    buckets = set(res["aws_s3_bucket"])
    blocks = res["aws_s3_bucket_public_access_block"]
    assert set(blocks) == buckets
    for block in blocks.values():
        assert all(
            block[k] is True
            for k in (
                "block_public_acls",
                "block_public_policy",
                "ignore_public_acls",
                "restrict_public_buckets",
            )
        )
    for name, document in tree["data"]["aws_iam_policy_document"].items():
        for st in document["statement"]:
            for principal in st.get("principals", []):
                if "*" in principal["identifiers"]:
                    assert st["effect"] == "Deny", name  # only the TLS-only denials
    db = res["aws_db_instance"]["main"]
    assert db["publicly_accessible"] is False and db["storage_encrypted"] is True
    assert db["manage_master_user_password"] is True and "password" not in db
    for service in res["aws_ecs_service"].values():
        assert service["network_configuration"][0]["assign_public_ip"] is False
        assert service["network_configuration"][0]["subnets"] == "${aws_subnet.private[*].id}"
    for subnet in res["aws_subnet"].values():
        assert not subnet.get("map_public_ip_on_launch", False)
    # Ingress: clients to the load balancer on 443; everything else from a security group.
    for name, rule in res["aws_vpc_security_group_ingress_rule"].items():
        if "cidr_ipv4" in rule:
            assert name == "alb_https" and rule["from_port"] == rule["to_port"] == 443
        else:
            assert "referenced_security_group_id" in rule
    listeners = res["aws_lb_listener"]
    assert [listener["protocol"] for listener in listeners.values()] == ["HTTPS"]
    assert res["aws_lb"]["main"]["drop_invalid_header_fields"] is True
    assert res["aws_s3_bucket_versioning"]["blobs"]["versioning_configuration"][0]["status"] == (
        "Enabled"
    )
    rules = res["aws_s3_bucket_lifecycle_configuration"]["blobs"]["rule"]
    assert any("abort_incomplete_multipart_upload" in r for r in rules)


# ---- checkov -------------------------------------------------------------------------------------


def test_checkov_finds_nothing_and_every_skip_is_justified(tmp_path):
    checkov = require_tool("checkov")
    proc = subprocess.run(
        [
            checkov,
            "--directory",
            str(TERRAFORM),
            "--framework",
            "terraform",
            "--skip-download",
            "--quiet",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE"},
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    results = report["results"]
    failed = [(c["check_id"], c["resource"]) for c in results.get("failed_checks", [])]
    assert failed == []
    assert report["summary"]["passed"] > 300
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "")
        assert len(reason) > 30, f"{check['check_id']} on {check['resource']} needs a reason"
