variable "name" {
  description = "Prefix of every resource name."
  type        = string
  default     = "cargohold"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "Lowercase letters, digits and '-', 2 to 21 characters, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "domain_name" {
  description = "Host name clients use (podman login <domain_name>); point it at the load balancer."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for domain_name, in the same region, for the HTTPS listener."
  type        = string
}

variable "image" {
  description = "Cargohold container image (e.g. <account>.dkr.ecr.<region>.amazonaws.com/cargohold:<tag>), used by the web and worker services."
  type        = string
}

variable "lambda_zip" {
  description = "The sign-up trigger package built by `make lambda`."
  type        = string
  default     = "../build/lambda_signup.zip"
}

# ---- network -----------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "Address range of the VPC."
  type        = string
  default     = "10.40.0.0/16"
}

variable "az_count" {
  description = "Availability zones to spread subnets, tasks and the database over."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 4
    error_message = "Between 2 and 4: the load balancer and the database need two zones."
  }
}

variable "ingress_cidrs" {
  description = "Who may reach the registry on 443. A registry for the public internet keeps 0.0.0.0/0; a private one lists its networks."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "nat_gateways" {
  description = "NAT gateways for the private subnets: 1 (cheaper) or one per zone (survives a zone outage)."
  type        = number
  default     = 1
}

# ---- database ----------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_allocated_storage" {
  description = "Initial database storage, GiB (it grows up to ten times this on its own)."
  type        = number
  default     = 20
}

variable "db_engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "db_multi_az" {
  description = "A standby in a second zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery)."
  type        = number
  default     = 14
}

variable "deletion_protection" {
  description = "Protect the database, the user pool and the load balancer from deletion."
  type        = bool
  default     = true
}

# ---- services ----------------------------------------------------------------------------

variable "web_cpu" {
  description = "CPU units of a web task (1024 = one vCPU)."
  type        = number
  default     = 1024
}

variable "web_memory" {
  description = "Memory of a web task, MiB."
  type        = number
  default     = 2048
}

variable "web_min_tasks" {
  description = "Fewest web tasks; autoscaling adds more under load."
  type        = number
  default     = 2
}

variable "web_max_tasks" {
  description = "Most web tasks."
  type        = number
  default     = 8
}

variable "worker_cpu" {
  description = "CPU units of the sign-up worker task."
  type        = number
  default     = 256
}

variable "worker_memory" {
  description = "Memory of the sign-up worker task, MiB."
  type        = number
  default     = 512
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the logs."
  type        = number
  default     = 365
}

# ---- identity and sign-up ----------------------------------------------------------------

variable "admin_group" {
  description = "Cognito group whose members are Cargohold site administrators."
  type        = string
  default     = "cargohold-admins"
}

variable "break_glass_admin" {
  description = "Local administrator with a local password (in Secrets Manager), for when Cognito cannot be used."
  type        = string
  default     = "admin"
}

variable "allowed_email_domains" {
  description = "Comma-separated e-mail domains allowed to sign up; empty allows any."
  type        = string
  default     = ""
}

variable "self_sign_up" {
  description = "Whether people may sign themselves up; false lets only administrators create users."
  type        = bool
  default     = true
}

variable "signup_personal_org" {
  description = "Personal organisation for new users: always, uninvited or never."
  type        = string
  default     = "uninvited"

  validation {
    condition     = contains(["always", "uninvited", "never"], var.signup_personal_org)
    error_message = "One of always, uninvited, never."
  }
}

variable "bootstrap_org" {
  description = "First organisation, owned by the break-glass administrator (flask bootstrap)."
  type        = string
  default     = "main"
}

variable "auth_domain_prefix" {
  description = "Prefix of the Cognito hosted UI's domain (<prefix>.auth.<region>.amazoncognito.com), unique in the region; empty: <name>-<random hex>."
  type        = string
  default     = ""
}
