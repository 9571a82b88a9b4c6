//! Every email exists as a text and an HTML template sharing the same fields, layout and
//! footer, so the two parts never say different things.

use askama::Template;

/// A rendered email, both parts.
#[derive(Debug, Clone)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Defines a message type whose fields feed both templates of a pair.
macro_rules! message {
    ($name:ident, $text:literal, $html:literal, { $($field:ident),* $(,)? }) => {
        pub struct $name<'a> {
            $(pub $field: &'a str,)*
        }

        impl $name<'_> {
            pub fn render(&self, subject: String) -> Result<RenderedEmail, askama::Error> {
                #[derive(Template)]
                #[template(path = $text)]
                struct Text<'b> {
                    #[allow(dead_code)]
                    subject: &'b str,
                    $($field: &'b str,)*
                }
                #[derive(Template)]
                #[template(path = $html)]
                struct Html<'b> {
                    subject: &'b str,
                    $($field: &'b str,)*
                }
                let text = Text { subject: &subject, $($field: self.$field,)* }.render()?;
                let html = Html { subject: &subject, $($field: self.$field,)* }.render()?;
                Ok(RenderedEmail { subject, text, html })
            }
        }
    };
}

message!(VerifyEmail, "email/verify_email.txt", "email/verify_email.html", { name, link });
message!(PasswordReset, "email/password_reset.txt", "email/password_reset.html", { name, link });
message!(Invitation, "email/invitation.txt", "email/invitation.html", { inviter, org, role, link, expires });
message!(EmailChange, "email/email_change.txt", "email/email_change.html", { name, link });
message!(EmailChangeNotice, "email/email_change_notice.txt", "email/email_change_notice.html", { name, new_address, link });

impl VerifyEmail<'_> {
    pub fn email(&self) -> Result<RenderedEmail, askama::Error> {
        self.render("Confirm your email address".to_owned())
    }
}

impl PasswordReset<'_> {
    pub fn email(&self) -> Result<RenderedEmail, askama::Error> {
        self.render("Reset your KalTalk password".to_owned())
    }
}

impl EmailChange<'_> {
    pub fn email(&self) -> Result<RenderedEmail, askama::Error> {
        self.render("Confirm your new KalTalk sign-in address".to_owned())
    }
}

impl EmailChangeNotice<'_> {
    pub fn email(&self) -> Result<RenderedEmail, askama::Error> {
        self.render("Your KalTalk sign-in address is being changed".to_owned())
    }
}

impl Invitation<'_> {
    pub fn email(&self) -> Result<RenderedEmail, askama::Error> {
        self.render(format!(
            "{} invited you to {} on KalTalk",
            self.inviter, self.org
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_parts_carry_the_link_and_html_is_escaped() {
        let email = Invitation {
            inviter: "Ada <script>",
            org: "Acme & Co",
            role: "agent",
            link: "https://kaltalk.example/invitations/abc",
            expires: "2026-12-03",
        }
        .email()
        .expect("render");
        assert_eq!(
            email.subject,
            "Ada <script> invited you to Acme & Co on KalTalk"
        );
        assert!(
            email
                .text
                .contains("https://kaltalk.example/invitations/abc")
        );
        assert!(
            email
                .html
                .contains("href=\"https://kaltalk.example/invitations/abc\"")
        );
        assert!(email.text.contains("Acme & Co"), "text is not HTML-escaped");
        assert!(
            !email.html.contains("Acme & Co"),
            "HTML part escapes the name"
        );
        assert!(!email.html.contains("<script>"));
        assert!(
            email.text.contains("You received this email"),
            "shared footer"
        );
    }
}
