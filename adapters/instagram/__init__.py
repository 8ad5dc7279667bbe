"""Instagram Messaging adapter (Instagram professional accounts). The class is
:class:`adapter.InstagramAdapter`."""
