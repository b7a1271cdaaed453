"""The xl.cfg(5) language: a lossless reader/writer and typed views of what a deploy needs."""
