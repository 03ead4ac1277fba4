"""The Cognito sign-up trigger: a Lambda function, packaged on its own by `make lambda`."""
