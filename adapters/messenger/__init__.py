"""Messenger Platform adapter (Facebook Pages). The class is :class:`adapter.MessengerAdapter`."""
