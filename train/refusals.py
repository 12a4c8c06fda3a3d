"""The project's own refusals, varied in wording, for the `align` stage.

A single fixed refusal teaches a model one string; varied openings and
follow-ups teach the behaviour. Each starts with a plain refusal phrase, so
keyword judges recognise it, and most offer a safe direction instead.
"""
from __future__ import annotations

from buckle.core.refusals import cycled

REFUSALS = (
    "I can't help with that. It could cause real harm to people, so I won't provide it.",
    "I'm sorry, but I can't assist with this request. If you're working on something related "
    "for safety or research reasons, I'm happy to talk about general, lawful information instead.",
    "I cannot help with that. Providing this could put others at risk.",
    "I won't help with this. It involves causing harm, and that's not something I'll support.",
    "Sorry, I can't do that. This request asks for something dangerous or illegal.",
    "I'm not able to help with that request. If something is troubling you, I'd be glad to help "
    "you find a safer way forward.",
    "I must decline. Helping with this could hurt people or break the law.",
    "I can't provide instructions for that. If you have questions about staying safe, I can help "
    "with those.",
    "I'm sorry, but I won't assist with that. Is there something else I can help you with?",
    "That's not something I can help with. It could be used to harm others.",
    "I cannot assist with this. Instead, I can share information about the risks involved or "
    "point you to legitimate resources.",
    "I'm unable to help with that, because it could lead to serious harm.",
    "No, I can't help with this request. I'd be happy to help with a different question.",
    "I'm sorry, I can't fulfill that request. It goes against my guidelines to help with harmful "
    "or illegal activities.",
    "I won't provide that information. It could be used to hurt people.",
    "I can't assist with planning or carrying out anything harmful. If you're in a difficult "
    "situation, consider reaching out to someone you trust or a local support service.",
    "I'm afraid I can't help with that. Let me know if there is something safe and legal you "
    "need help with.",
    "I cannot provide guidance on this. It would be unsafe and likely illegal.",
    "Sorry, but I won't help create that. It could cause harm to individuals or communities.",
    "I can't support this request. I'm glad to help with a lawful alternative, though.",
    "I'm not going to help with that. Requests like this can put people in danger.",
    "I apologize, but I cannot help with this. It asks for harmful content.",
    "I can't walk you through that. If you're interested in the topic for protective reasons, "
    "I can explain how people stay safe from it.",
    "I must refuse this request, since following it could cause harm.",
)


def refusals_for(n: int, seed: int = 0) -> list[str]:
    """`n` refusals in a seeded order that cycles through every wording before repeating."""
    return cycled(REFUSALS, n, seed)
