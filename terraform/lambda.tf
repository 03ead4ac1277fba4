# The sign-up trigger: PreSignUp checks the e-mail domain, PostConfirmation publishes the
# sign-up to SQS. Built by `make lambda` (build/lambda_signup.zip, deterministic).

resource "aws_lambda_function" "signup" {
  #checkov:skip=CKV_AWS_116:Cognito invokes the trigger synchronously and retries it itself; a dead-letter queue only serves asynchronous invocations.
  #checkov:skip=CKV_AWS_117:The trigger only calls SQS over TLS with IAM authorisation; a VPC attachment would add network-interface permissions on every resource and a NAT dependency to every sign-up.
  #checkov:skip=CKV_AWS_115:Reserving concurrency fails on accounts whose limit is still the new-account 10; sign-ups are rare and Cognito retries a throttled trigger.
  #checkov:skip=CKV_AWS_272:The package is built from this repository by `make lambda` and pinned by source_code_hash; code signing needs a signing profile outside this tree.
  function_name    = "${var.name}-signup"
  description      = "Cargohold sign-up trigger: publishes confirmed sign-ups to SQS"
  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  handler          = "lambda_signup.handler.handler"
  runtime          = "python3.12"
  architectures    = ["arm64"]
  role             = aws_iam_role.signup_lambda.arn
  memory_size      = 128
  timeout          = 5 # Cognito waits five seconds for a trigger.
  kms_key_arn      = aws_kms_key.main.arn

  environment {
    variables = {
      SIGNUP_QUEUE_URL      = aws_sqs_queue.signup.url
      ALLOWED_EMAIL_DOMAINS = var.allowed_email_domains
    }
  }

  tracing_config {
    mode = "Active"
  }

  depends_on = [aws_cloudwatch_log_group.signup_lambda]
}

resource "aws_cloudwatch_log_group" "signup_lambda" {
  name              = "/aws/lambda/${var.name}-signup"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_lambda_permission" "cognito" {
  statement_id   = "CognitoTriggers"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.signup.function_name
  principal      = "cognito-idp.amazonaws.com"
  source_arn     = aws_cognito_user_pool.main.arn
  source_account = local.account_id
}
