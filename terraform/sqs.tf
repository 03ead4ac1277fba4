# Sign-up messages from the Cognito trigger to the worker. FIFO: the trigger's deduplication id
# (the user's sub) turns a retried trigger into one message. A message the worker cannot apply
# moves to the dead-letter queue after `maxReceiveCount` tries.

resource "aws_sqs_queue" "signup" {
  name                        = "${var.name}-signup.fifo"
  fifo_queue                  = true
  content_based_deduplication = false
  # Longer than the worker's visibility (it extends it while working on a message).
  visibility_timeout_seconds = 120
  message_retention_seconds  = 4 * 24 * 3600
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.signup_dlq.arn
    maxReceiveCount     = 10
  })
}

resource "aws_sqs_queue" "signup_dlq" {
  name                      = "${var.name}-signup-dlq.fifo"
  fifo_queue                = true
  message_retention_seconds = 14 * 24 * 3600
  sqs_managed_sse_enabled   = true
}

# Only the sign-up queue may send its failures here (and be redriven back from it).
resource "aws_sqs_queue_redrive_allow_policy" "signup_dlq" {
  queue_url = aws_sqs_queue.signup_dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.signup.arn]
  })
}

resource "aws_sqs_queue_policy" "signup" {
  for_each = {
    signup = aws_sqs_queue.signup
    dlq    = aws_sqs_queue.signup_dlq
  }
  queue_url = each.value.id
  policy    = data.aws_iam_policy_document.queue_tls[each.key].json
}

data "aws_iam_policy_document" "queue_tls" {
  for_each = {
    signup = aws_sqs_queue.signup.arn
    dlq    = aws_sqs_queue.signup_dlq.arn
  }

  statement {
    sid       = "TLSOnly"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# A message in the dead-letter queue needs an operator.
resource "aws_cloudwatch_metric_alarm" "signup_dlq" {
  alarm_name          = "${var.name}-signup-dead-letters"
  alarm_description   = "Sign-ups the worker could not apply; see docs/deploy-aws.md"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.signup_dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
}
