# The user pool people sign up to and sign in with (CARGOHOLD_IDENTITY=cognito). Registry
# clients send a username and password, which Cargohold checks with USER_PASSWORD_AUTH; the
# pool's ID and access tokens are accepted on /api/v1; the console's "Sign in with Cognito" goes
# through the pool's hosted UI (the authorization-code flow with PKCE).

resource "aws_cognito_user_pool" "main" {
  name                     = var.name
  deletion_protection      = var.deletion_protection ? "ACTIVE" : "INACTIVE"
  auto_verified_attributes = ["email"]

  username_configuration {
    case_sensitive = false
  }

  admin_create_user_config {
    allow_admin_create_user_only = !var.self_sign_up
  }

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = false
    temporary_password_validity_days = 3
  }

  # Registry clients cannot answer an MFA challenge; people who want a second factor use
  # Cargohold access tokens in their clients instead of their password.
  mfa_configuration = "OPTIONAL"

  software_token_mfa_configuration {
    enabled = true
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }

  user_attribute_update_settings {
    attributes_require_verification_before_update = ["email"]
  }

  schema {
    name                = "email"
    attribute_data_type = "String"
    required            = true
    mutable             = true

    string_attribute_constraints {
      min_length = 3
      max_length = 254
    }
  }

  lambda_config {
    pre_sign_up       = aws_lambda_function.signup.arn
    post_confirmation = aws_lambda_function.signup.arn
  }

  lifecycle {
    # The schema cannot change once the pool exists.
    ignore_changes = [schema]
  }
}

resource "aws_cognito_user_pool_client" "cargohold" {
  name            = "cargohold"
  user_pool_id    = aws_cognito_user_pool.main.id
  generate_secret = true

  explicit_auth_flows = [
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
  ]
  prevent_user_existence_errors = "ENABLED"
  enable_token_revocation       = true

  access_token_validity  = 60
  id_token_validity      = 60
  refresh_token_validity = 30

  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "days"
  }

  read_attributes  = ["email", "email_verified"]
  write_attributes = ["email"]

  # The console's sign-in through the hosted UI: the authorization-code flow only (no implicit
  # flow), back to exactly these URLs (CARGOHOLD_PUBLIC_URL's), for the scopes it asks.
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "email"]
  supported_identity_providers         = ["COGNITO"]
  callback_urls                        = ["${local.public_url}/sign-in/cognito/callback"]
  logout_urls                          = ["${local.public_url}/"]
}

# The hosted UI: https://<prefix>.auth.<region>.amazoncognito.com (CARGOHOLD_COGNITO_DOMAIN).
resource "random_id" "auth_domain" {
  byte_length = 4
}

resource "aws_cognito_user_pool_domain" "main" {
  domain       = coalesce(var.auth_domain_prefix, "${var.name}-${random_id.auth_domain.hex}")
  user_pool_id = aws_cognito_user_pool.main.id
}

locals {
  hosted_ui_url = "https://${aws_cognito_user_pool_domain.main.domain}.auth.${var.region}.amazoncognito.com"
}

resource "aws_cognito_user_group" "admins" {
  name         = var.admin_group
  user_pool_id = aws_cognito_user_pool.main.id
  description  = "Cargohold site administrators"
}
