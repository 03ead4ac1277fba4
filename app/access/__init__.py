"""Who may do what. One decision function for every route of every blueprint."""

from app.access.policy import ACTIONS, Principal, allowed, granted_actions

__all__ = ["ACTIONS", "Principal", "allowed", "granted_actions"]
