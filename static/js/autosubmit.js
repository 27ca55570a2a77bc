// Forms marked data-autosubmit are sent as soon as the page loads
// (sso/templates/sso/saml_post.html: the IdP's answer, posted once more
// from our own page so the browser sends our session cookie). Without
// JavaScript the form's button does the same.
(function () {
  'use strict'
  const form = document.querySelector('form[data-autosubmit]')
  if (form) form.submit()
})()
