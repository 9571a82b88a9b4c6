//! Handing a conversation from the bot to people: what a customer says that asks for a
//! person, and the reasons the team reads in the private note. The intake hands over at
//! once when the customer asks; the bot's turn hands over for the other reasons.

/// Words that mean "let me talk to a person", matched without a model.
const ASKS_FOR_A_PERSON: &[&str] = &[
    "human",
    "person",
    "agent",
    "someone",
    "representative",
    "operator",
    "real people",
    "talk to support",
    "speak to",
];

pub fn asks_for_a_person(text: &str) -> bool {
    let text = text.to_lowercase();
    ASKS_FOR_A_PERSON.iter().any(|words| text.contains(words))
}

/// Why the bot hands over, as the private note says it.
pub mod reasons {
    pub const VISITOR_PRESSED: &str = "the visitor pressed “Talk to a person”.";
    pub const VISITOR_ASKED: &str = "the visitor asked for a person.";
    pub const TURN_LIMIT: &str = "the bot reached its limit of answers in this conversation.";
    pub const ADDRESS_LIMIT: &str =
        "the bot reached its hourly limit of answers to this visitor's address.";
    pub const NO_ANSWER: &str = "the knowledge base has no answer to this question.";
    pub const MODEL_DECLINED: &str = "the model found no answer in the knowledge base.";
    pub const AI_OFF: &str = "the AI agent is switched off for this organization.";
    pub const OPTED_OUT: &str = "the contact asked not to be processed by AI.";

    /// The provider failed or timed out; `detail` says how (status, timeout), for the team.
    pub fn unavailable(detail: &str) -> String {
        format!("the AI model was unavailable: {detail}.")
    }

    pub fn model_handed_over(reason: &str) -> String {
        format!("the model handed over: {reason}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_a_person_are_recognised() {
        assert!(asks_for_a_person("Can I talk to a human please?"));
        assert!(asks_for_a_person("I want to SPEAK TO someone"));
        assert!(!asks_for_a_person("What are your opening hours?"));
    }
}
