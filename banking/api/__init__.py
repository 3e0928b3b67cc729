"""The bank's REST surface: dependencies (deps.py), the one error object (errors.py), the
HTTP plumbing every reply passes through (security.py, ratelimit.py), and one module per
resource. banking/api imports only banking: every package above may use its plumbing, and
what the admin routes report on comes through a port (observatory.py) that the assistant's
package implements."""
