"""Channel providers: `ChannelProvider.send(OutboundMessage) -> ProviderResult`."""

from api.messaging.providers.base import ChannelProvider, OutboundMessage, ProviderResult

__all__ = ["ChannelProvider", "OutboundMessage", "ProviderResult"]
