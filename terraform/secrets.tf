# Settings that are secrets, in Secrets Manager; the tasks receive them as environment
# variables through the execution role. The database password is RDS's own secret (rds.tf).

resource "random_password" "token_key" {
  length  = 64
  special = false
}

resource "random_password" "metrics_token" {
  length  = 48
  special = false
}

resource "random_password" "admin" {
  length  = 32
  special = false
}

locals {
  generated_secrets = {
    token-key             = random_password.token_key.result
    metrics-token         = random_password.metrics_token.result
    admin-password        = random_password.admin.result
    cognito-client-secret = aws_cognito_user_pool_client.cargohold.client_secret
  }
}

# Keyed by name alone: for_each may not take the (sensitive) values.
resource "aws_secretsmanager_secret" "app" {
  #checkov:skip=CKV2_AWS_57:These are keys Cargohold itself holds (token signing key, metrics token, break-glass password, app client secret); no rotation Lambda can change them in step with the app. Rotate by tainting the random_password and redeploying.
  for_each                = toset(["token-key", "metrics-token", "admin-password", "cognito-client-secret"])
  name_prefix             = "${var.name}/${each.key}-"
  description             = "Cargohold ${each.key}"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "app" {
  for_each      = aws_secretsmanager_secret.app
  secret_id     = each.value.id
  secret_string = local.generated_secrets[each.key]
}
