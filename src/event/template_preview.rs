//! The `template_preview_rendered` trigger: [`TemplatePreview`].

use serde::Deserialize;
use serde_json::{Map, Value};

use super::common::null_as_empty;

/// A rendered template preview: the `data` of a `template_preview_rendered`
/// event.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplatePreview {
    /// The preview id.
    pub id: String,
    /// The id of the previewed template.
    #[serde(default)]
    pub template_id: Option<String>,
    /// Where the rendered preview image can be fetched.
    #[serde(default)]
    pub image_url: Option<String>,
    /// The rendering errors (empty when none); items may be strings or
    /// objects and are kept as sent.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub errors: Vec<Value>,
    /// Every field not named above, as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::event::common::fixtures::{envelope, parse};
    use crate::event::{Event, TEMPLATE_PREVIEW_RENDERED};

    #[test]
    fn parses_template_preview_rendered_with_mixed_errors() {
        let data = json!({
            "id": "prv_51cQ",
            "templateId": "tmpl_a91Lr",
            "imageUrl": "https://api.print.one/v2/storage/template/preview/prv_51cQ",
            "errors": [
                "Unknown merge variable: lastName",
                { "page": 2, "message": "Image resolution too low" }
            ],
            "pageCount": 2
        });
        let Event::TemplatePreviewRendered(preview) =
            parse(&envelope(TEMPLATE_PREVIEW_RENDERED, &data))
        else {
            panic!("expected a template preview");
        };

        assert_eq!(preview.id, "prv_51cQ");
        assert_eq!(preview.template_id.as_deref(), Some("tmpl_a91Lr"));
        assert_eq!(
            preview.image_url.as_deref(),
            Some("https://api.print.one/v2/storage/template/preview/prv_51cQ")
        );
        assert_eq!(preview.errors.len(), 2);
        assert_eq!(preview.errors[0], "Unknown merge variable: lastName");
        assert_eq!(preview.errors[1]["page"], 2);
        assert_eq!(preview.other["pageCount"], 2);
    }

    #[test]
    fn template_preview_without_errors_has_an_empty_list() {
        let data = json!({ "id": "prv_ok", "templateId": "tmpl_1", "imageUrl": "https://x/p.png" });
        let Event::TemplatePreviewRendered(preview) =
            parse(&envelope(TEMPLATE_PREVIEW_RENDERED, &data))
        else {
            panic!("expected a template preview");
        };

        assert!(preview.errors.is_empty());
    }
}
