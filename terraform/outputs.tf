output "registry_url" {
  description = "Where clients reach Cargohold (podman login <this host>)."
  value       = local.public_url
}

output "load_balancer_dns_name" {
  description = "Point domain_name at this (CNAME, or an alias record)."
  value       = aws_lb.main.dns_name
}

output "ecr_repository_url" {
  description = "Push the Cargohold image here."
  value       = aws_ecr_repository.cargohold.repository_url
}

output "cluster_name" {
  description = "ECS cluster running the web and worker services."
  value       = aws_ecs_cluster.main.name
}

output "private_subnet_ids" {
  description = "For one-off tasks (flask bootstrap)."
  value       = aws_subnet.private[*].id
}

output "web_security_group_id" {
  description = "For one-off tasks (flask bootstrap)."
  value       = aws_security_group.web.id
}

output "user_pool_id" {
  description = "Cognito user pool."
  value       = aws_cognito_user_pool.main.id
}

output "user_pool_client_id" {
  description = "App client Cargohold checks passwords with."
  value       = aws_cognito_user_pool_client.cargohold.id
}

output "hosted_ui_url" {
  description = "Cognito hosted UI the console's \"Sign in with Cognito\" goes through."
  value       = local.hosted_ui_url
}

output "admin_group" {
  description = "Cognito group of site administrators."
  value       = aws_cognito_user_group.admins.name
}

output "signup_queue_url" {
  description = "Queue of sign-up messages."
  value       = aws_sqs_queue.signup.url
}

output "signup_dead_letter_queue_url" {
  description = "Sign-ups the worker could not apply."
  value       = aws_sqs_queue.signup_dlq.url
}

output "blob_bucket" {
  description = "Bucket holding blobs."
  value       = aws_s3_bucket.blobs.id
}

output "database_endpoint" {
  description = "PostgreSQL endpoint (private)."
  value       = aws_db_instance.main.address
}

output "break_glass_password_secret" {
  description = "Secrets Manager secret holding the local administrator's password."
  value       = aws_secretsmanager_secret.app["admin-password"].arn
}
