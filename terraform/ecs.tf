# Fargate: the web service behind the load balancer and the sign-up worker, one image. Every
# setting reaches the app as a CARGOHOLD_* variable: plain ones in `environment`, secret ones
# from Secrets Manager in `secrets`.

resource "aws_ecr_repository" "cargohold" {
  name                 = var.name
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "cargohold" {
  repository = aws_ecr_repository.cargohold.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 30 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_ecs_cluster" "main" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

resource "aws_cloudwatch_log_group" "ecs" {
  for_each          = toset(["web", "worker"])
  name              = "/${var.name}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

locals {
  database_url = "postgresql://${aws_db_instance.main.username}@${aws_db_instance.main.address}:${aws_db_instance.main.port}/${aws_db_instance.main.db_name}?sslmode=require"

  # What the web tasks and the worker share.
  common_environment = {
    CARGOHOLD_DATA_DIR             = "/tmp/cargohold"
    CARGOHOLD_DATABASE_URL         = local.database_url
    CARGOHOLD_STORAGE              = "s3"
    CARGOHOLD_S3_BUCKET            = aws_s3_bucket.blobs.id
    CARGOHOLD_S3_REGION            = var.region
    CARGOHOLD_LOG_FORMAT           = "json"
    CARGOHOLD_IDENTITY             = "cognito"
    CARGOHOLD_COGNITO_USER_POOL_ID = aws_cognito_user_pool.main.id
    CARGOHOLD_COGNITO_CLIENT_ID    = aws_cognito_user_pool_client.cargohold.id
    CARGOHOLD_COGNITO_REGION       = var.region
    CARGOHOLD_COGNITO_ADMIN_GROUP  = aws_cognito_user_group.admins.name
    CARGOHOLD_PUBLIC_URL           = local.public_url
  }
  common_secrets = {
    CARGOHOLD_DATABASE_PASSWORD = "${aws_db_instance.main.master_user_secret[0].secret_arn}:password::"
    CARGOHOLD_TOKEN_KEY         = aws_secretsmanager_secret.app["token-key"].arn
  }

  web_environment = merge(local.common_environment, {
    CARGOHOLD_HOST               = "0.0.0.0"
    CARGOHOLD_PORT               = "5000"
    CARGOHOLD_TRUSTED_PROXIES    = "1" # the load balancer
    CARGOHOLD_ADMIN_USER         = var.break_glass_admin
    CARGOHOLD_BOOTSTRAP_ORG      = var.bootstrap_org
    CARGOHOLD_BOOTSTRAP_REGISTRY = "main"
    CARGOHOLD_COGNITO_DOMAIN     = local.hosted_ui_url # "Sign in with Cognito" in the console
  })
  web_secrets = merge(local.common_secrets, {
    CARGOHOLD_COGNITO_CLIENT_SECRET = aws_secretsmanager_secret.app["cognito-client-secret"].arn
    CARGOHOLD_METRICS_TOKEN         = aws_secretsmanager_secret.app["metrics-token"].arn
    CARGOHOLD_ADMIN_PASSWORD        = aws_secretsmanager_secret.app["admin-password"].arn
  })

  worker_environment = merge(local.common_environment, {
    CARGOHOLD_SIGNUP_QUEUE_URL    = aws_sqs_queue.signup.url
    CARGOHOLD_SIGNUP_PERSONAL_ORG = var.signup_personal_org
    CARGOHOLD_SIGNUP_REGISTRY     = "main"
    CARGOHOLD_WORKER_VISIBILITY   = "120"
    # CARGOHOLD_WORKER_METRICS_PORT stays off: nothing on Fargate scrapes it without a collector
    # sidecar (docs/deploy-aws.md, "Operating it").
  })
  worker_secrets = local.common_secrets

  # A read-only root file system; gunicorn and the app write only under /tmp.
  scratch = [{ sourceVolume = "scratch", containerPath = "/tmp", readOnly = false }]
}

resource "aws_ecs_task_definition" "web" {
  family                   = "${var.name}-web"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.web_cpu
  memory                   = var.web_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.web.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([{
    name                   = "web"
    image                  = var.image
    essential              = true
    readonlyRootFilesystem = true
    portMappings           = [{ containerPort = 5000, protocol = "tcp" }]
    environment            = [for k, v in local.web_environment : { name = k, value = v }]
    secrets                = [for k, v in local.web_secrets : { name = k, valueFrom = v }]
    mountPoints            = local.scratch
    stopTimeout            = 60
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.ecs["web"].name
        awslogs-region        = var.region
        awslogs-stream-prefix = "web"
      }
    }
  }])
}

resource "aws_ecs_task_definition" "worker" {
  family                   = "${var.name}-worker"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.worker_cpu
  memory                   = var.worker_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([{
    name                   = "worker"
    image                  = var.image
    essential              = true
    command                = ["python", "-m", "worker"]
    readonlyRootFilesystem = true
    environment            = [for k, v in local.worker_environment : { name = k, value = v }]
    secrets                = [for k, v in local.worker_secrets : { name = k, valueFrom = v }]
    mountPoints            = local.scratch
    # A long poll (20 s) and its batch finish before the task stops.
    stopTimeout = 60
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.ecs["worker"].name
        awslogs-region        = var.region
        awslogs-stream-prefix = "worker"
      }
    }
  }])
}

resource "aws_ecs_service" "web" {
  name                              = "web"
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.web.arn
  desired_count                     = var.web_min_tasks
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  health_check_grace_period_seconds = 120
  propagate_tags                    = "SERVICE"

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.web.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.web.arn
    container_name   = "web"
    container_port   = 5000
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  lifecycle {
    ignore_changes = [desired_count] # autoscaling owns it
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_ecs_service" "worker" {
  name             = "signup-worker"
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.worker.arn
  desired_count    = 1
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  propagate_tags   = "SERVICE"

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }
}

# ---- autoscaling ---------------------------------------------------------------------------

resource "aws_appautoscaling_target" "web" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.web.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.web_min_tasks
  max_capacity       = var.web_max_tasks
}

resource "aws_appautoscaling_policy" "web_cpu" {
  name               = "${var.name}-web-cpu"
  service_namespace  = aws_appautoscaling_target.web.service_namespace
  resource_id        = aws_appautoscaling_target.web.resource_id
  scalable_dimension = aws_appautoscaling_target.web.scalable_dimension
  policy_type        = "TargetTrackingScaling"

  target_tracking_scaling_policy_configuration {
    target_value       = 60
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "web_requests" {
  name               = "${var.name}-web-requests"
  service_namespace  = aws_appautoscaling_target.web.service_namespace
  resource_id        = aws_appautoscaling_target.web.resource_id
  scalable_dimension = aws_appautoscaling_target.web.scalable_dimension
  policy_type        = "TargetTrackingScaling"

  target_tracking_scaling_policy_configuration {
    target_value       = 1000
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.main.arn_suffix}/${aws_lb_target_group.web.arn_suffix}"
    }
  }
}
