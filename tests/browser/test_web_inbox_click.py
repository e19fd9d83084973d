"""An agent's click in a busy inbox (Chinese interface): a lead's message that re-renders the
inbox while the agent is pressing on another lead's conversation must not swallow the click —
the conversation pressed opens."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.conftest import sign_in
from tests.browser.test_web_presence import open_lead
from tests.support.peers import new_user


def test_a_click_on_a_lead_survives_an_inbox_update_in_the_middle_of_it(
    new_page, web_server, shot
) -> None:
    agent = new_page()
    agent_id = sign_in(agent, web_server, "Wang Agent", "agent", "zh")
    quiet, busy = new_user("buyer", "es", "Lead Quiet"), new_user("buyer", "en", "Lead Busy")
    pages = {}
    for lead in (quiet, busy):  # the busy lead writes last: its conversation is on top
        page = pages[lead.id] = open_lead(new_page, web_server, lead)
        page.locator("#new-participants").fill(agent_id)
        page.locator("#new-submit").click()
        expect(page.locator("#conv-title")).to_have_text("Wang Agent")
        page.locator("#composer-text").fill(f"Hello from {lead.name}")
        page.locator("#composer-text").press("Enter")
        expect(agent.locator("#inbox-list li.inbox-item").first).to_contain_text(lead.name)
    items = agent.locator("#inbox-list li.inbox-item")
    expect(items).to_have_count(2)
    target = agent.locator("#inbox-list li.inbox-item", has_text="Lead Quiet")

    # The agent presses on the quiet lead; the busy lead's message arrives before the release.
    box = target.bounding_box()
    assert box is not None
    agent.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    agent.mouse.down()
    busy_page = pages[busy.id]
    busy_page.locator("#composer-text").fill("Can you ship 5000 pcs by Friday?")
    busy_page.locator("#composer-text").press("Enter")
    expect(items.first).to_contain_text("5000 pcs")  # the inbox was rendered again meanwhile
    agent.mouse.up()

    expect(agent.locator("#conv-title")).to_have_text("Lead Quiet")
    assert agent.evaluate("tradetalk.conversation.id") == target.get_attribute("data-id")
    shot(agent, "agent-click-survives-inbox-update-zh")
