"""One function per user intent: plain arguments in, what to show next out.

Slack listeners (`handlers/`) parse, ack and call one of these. A step never sees Bolt's
`ack` or the request body; where it must talk to Slack itself (open a modal and fill it,
post the approval request) it is given the `WebClient`. Slow steps return the view to put
in the open modal, and the listener runs them after the ack.
"""
