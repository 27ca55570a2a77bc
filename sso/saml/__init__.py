"""SAML 2.0 single sign-on (kind `saml`): the IdP's metadata, our requests,
the checks on its responses, single logout over the redirect binding.

XML signatures are checked by signxml, which hands back only the signed
element: everything read from an assertion comes from that copy, so no
unsigned part of a document (the XML signature wrapping attacks) is ever
read. docs/saml-library.md says why signxml and not pysaml2 or python3-saml.
"""
