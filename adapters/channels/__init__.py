"""One adapter per sales channel, each turning that channel's payloads into the canonical order
(`domain.intake.ChannelOrder`). `ADAPTERS` is what the intake worker reads with."""

from __future__ import annotations

from adapters.channels import (
    adobe_commerce,
    amazon,
    bigcommerce,
    generic,
    shopify,
    square,
    woocommerce,
)
from domain.intake import ChannelAdapter, SalesChannel

ADAPTERS: dict[SalesChannel, ChannelAdapter] = {
    adapter.channel: adapter
    for adapter in (
        shopify.ADAPTER,
        woocommerce.ADAPTER,
        bigcommerce.ADAPTER,
        adobe_commerce.ADAPTER,
        amazon.ADAPTER,
        square.ADAPTER,
        generic.ADAPTER,
    )
}
