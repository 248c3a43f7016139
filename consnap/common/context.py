"""Request context (oslo.context), carried over RPC and into the flows."""

from oslo_context import context


class RequestContext(context.RequestContext):
    """The caller: user, project, roles, token; ``is_admin`` from policy."""

    def to_policy_values(self):
        values = super().to_policy_values()
        values['project_id'] = self.project_id
        values['user_id'] = self.user_id
        return values

    @classmethod
    def from_dict(cls, values, **kwargs):
        kwargs.setdefault('auth_token', values.get('auth_token'))
        return super().from_dict(values, **kwargs)


def get_admin_context():
    """An internal context for periodic tasks (no user, admin)."""
    return RequestContext(is_admin=True, overwrite=False)
