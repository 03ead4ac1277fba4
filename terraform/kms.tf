# One customer-managed key for the data at rest: bucket, database, secrets, logs, images.

resource "aws_kms_key" "main" {
  description             = "${var.name}: data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A key policy's Resource "*" means this key alone; the account root statement is the required default that lets IAM policies grant use of the key.
  #checkov:skip=CKV_AWS_111:As above: "*" in a key policy is the key itself, and writes are only for the account and for CloudWatch Logs under a log-group condition.
  #checkov:skip=CKV_AWS_356:As above: a key policy cannot name the key's own ARN before it exists; "*" is the key itself.
  # The account administers the key; roles get their use of it through IAM policies.
  statement {
    sid       = "Account"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts this deployment's log groups with it, and nothing else.
  statement {
    sid       = "Logs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }
}
