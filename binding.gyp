{
  "targets": [
    {
      "target_name": "torchcap",
      "sources": [ "<!@(node -p \"['native', 'native/pillow'].flatMap(d => require('fs').readdirSync(d).filter(f => f.endsWith('.cc')).map(f => d + '/' + f)).join(' ')\")" ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/find-libtorch.js --gyp-include)"
      ],
      "defines": [ "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "TORCHCAP_BUILD_TOOL=\"node-gyp\"", "<!@(node scripts/find-libtorch.js --gyp-defines)" ],
      "cflags!": [ "-fno-exceptions" ],
      "cflags_cc!": [ "-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14" ],
      "cflags_cc": [ "-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "<!@(node scripts/find-libtorch.js --gyp-cflags)" ],
      "libraries": [ "<!@(node scripts/find-libtorch.js --gyp-libs)" ]
    }
  ]
}
