"use strict";
// Swagger UI from the pinned fastapi-offline wheel (no CDN). No validator badge (it would call
// validator.swagger.io); authorisations are not persisted (that would use localStorage).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
